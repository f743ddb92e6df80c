"""Collection of noisy learning histories: a teacher plus a fading-noise schedule.

``config`` (CollectConfig), ``schedule`` and ``noise`` (what is blended into the teacher's
actions), ``collector`` (the batched, resumable loop) and ``plot`` (the learning curves).
"""
