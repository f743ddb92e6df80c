"""A Vintix policy that sees exactly what training showed it: every step a fresh forward over each env's last
``context_len`` tokens.

:class:`~go2bench.vintix.inference.VintixPolicy` decodes with a sliding-window KV cache: once an env's stream is
longer than ``context_len``, each new token attends to the cached keys of the previous ``context_len`` tokens,
and those keys were themselves computed from the tokens before THEM. So after the window first slides, a layer's
keys carry information from up to ``n_layers x context_len`` tokens back, and no key is ever computed from a
short context, while in training every window starts fresh (its first tokens see almost nothing). Both agree
exactly until the window slides. This policy is the training-exact reference: one full forward per env per step
(the original workflow's inference, and the one-env baseline of ``benchmarks/eval_throughput.py``), so it costs
``context_len`` tokens of compute per step instead of one: a diagnostic for long evaluations, not a fast path.
"""

from __future__ import annotations

import torch

from go2bench.vintix.inference import VintixPolicy

__all__ = ["RecomputePolicy"]


class RecomputePolicy(VintixPolicy):
    """:class:`VintixPolicy`'s interface; each step recomputes every env's window (no KV cache, no CUDA graph)."""

    def __init__(self, *args, **kwargs):
        kwargs["cuda_graph"] = False
        super().__init__(*args, **kwargs)
        self.decode_info = {"cuda_graph": False, "mode": "recompute", "reason": "training-exact reference"}

    def _alloc_state(self, N: int, group: str, C: int) -> None:
        super()._alloc_state(N, group, C)
        self._gi_batch = torch.full((1,), self._gi, dtype=torch.long, device=self.device)
        self._forget(torch.ones(N, dtype=torch.bool))

    def _zero_state(self) -> None:
        super()._zero_state()
        self._forget(torch.ones(self.num_envs, dtype=torch.bool))

    def _forget(self, mask: torch.Tensor) -> None:
        """Empty token streams for the envs of ``mask`` (normalised obs, previous action, scaled reward)."""
        if not hasattr(self, "_tokens"):
            self._tokens: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        empty = (torch.zeros(0, self._obs_dim, device=self.device), torch.zeros(0, self._act_dim, device=self.device),
                 torch.zeros(0, device=self.device))
        if len(self._tokens) != self.num_envs:
            self._tokens = [empty] * self.num_envs
        for i in torch.as_tensor(mask).nonzero().flatten().tolist():
            self._tokens[i] = empty

    def clear_context(self, mask: torch.Tensor) -> None:
        super().clear_context(mask)
        self._forget(torch.as_tensor(mask, device="cpu").bool().reshape(-1))

    def _step(self, obs: torch.Tensor, prev_reward: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        if self.context == "episode":
            self._forget(start.cpu())
        o_all = self.normalize_obs(obs)
        out = torch.empty(self.num_envs, self._act_dim, device=self.device)
        for i, begins in enumerate(start.tolist()):  # one env at a time: each has its own window
            pa = torch.zeros(self._act_dim, device=self.device) if begins else self._prev_act[i]
            pr = torch.zeros((), device=self.device) if begins else prev_reward[i] * self._rscale
            o_buf, a_buf, r_buf = self._tokens[i]
            o_buf = torch.cat([o_buf, o_all[i][None]])[-self.context_len:]
            a_buf = torch.cat([a_buf, pa[None]])[-self.context_len:]
            r_buf = torch.cat([r_buf, pr.reshape(1)])[-self.context_len:]
            self._tokens[i] = (o_buf, a_buf, r_buf)
            pred = self.model(o_buf[None], a_buf[None], r_buf[None], self._gi_batch)
            out[i] = pred[0, -1, : self._act_dim].float()
        self._prev_act.copy_(out)
        return out * self._act_std + self._act_mean
