"""Vintix: an in-context (Algorithm Distillation) transformer trained multitask on learning histories.

Submodules: ``config`` (ModelConfig presets, TrainConfig, dataset config entries), ``data``
(lazy multitask window dataset, normalisation stats), ``model`` (the transformer), ``inference``
(:class:`VintixPolicy`, KV-cache streaming), ``train`` (training loop, DDP), ``cli``
(``go2bench train``).  Importing this package is cheap; torch loads with the submodules.
"""

__all__ = ["VintixPolicy", "VintixModel", "ModelConfig", "TrainConfig", "train"]


def __getattr__(name):
    if name == "VintixPolicy":
        from go2bench.vintix.inference import VintixPolicy

        return VintixPolicy
    if name == "VintixModel":
        from go2bench.vintix.model import VintixModel

        return VintixModel
    if name in ("ModelConfig", "TrainConfig"):
        from go2bench.vintix import config

        return getattr(config, name)
    if name == "train":
        from go2bench.vintix.train import train

        return train
    raise AttributeError(name)
