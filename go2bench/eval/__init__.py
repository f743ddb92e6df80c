"""Evaluation: the in-context protocol, its statistics and results, reference scores, leaderboards."""
