"""Evaluation: ``protocol`` (episode loop, in-context evaluation), ``stats`` (means, intervals, normalised
scores), ``results`` (the versioned results schema), ``reference`` (reference scores), ``leaderboard``
and ``rollout`` (the first smoke test)."""
