"""Evaluation: ``protocol`` (episode loop, in-context evaluation), ``stats`` (means, intervals, normalised
scores), ``results`` (the versioned results schema), ``reference`` (reference scores), ``leaderboard``
and ``rollout`` (the first smoke test). Task families: ``family_protocol`` (trials of held thetas),
``family_reference`` (per-theta reference returns), ``family_results`` (format ``go2bench.eval/2``),
``iqm`` (interquartile mean, stratified bootstrap) and ``family_leaderboard``."""
