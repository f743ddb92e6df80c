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

__all__ = ["RecomputePolicy", "WindowPolicy"]


class RecomputePolicy(VintixPolicy):
    """:class:`VintixPolicy`'s interface; each step recomputes every env's window (no KV cache, no CUDA graph)."""

    def __init__(self, *args, **kwargs):
        kwargs["cuda_graph"] = False
        super().__init__(*args, **kwargs)
        self.decode_info = {"cuda_graph": False, "mode": "recompute", "reason": "training-exact reference"}

    def _alloc_state(self, N: int, group: str, C: int) -> None:
        super()._alloc_state(N, group, C)
        self._gi_batch = torch.full((1,), self._gi, dtype=torch.long, device=self.device)
        self._tokens = [self._no_tokens()] * N  # per env: normalised obs, previous action, scaled reward

    def _no_tokens(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dev = self.device
        return torch.zeros(0, self._obs_dim, device=dev), torch.zeros(0, self._act_dim, device=dev), torch.zeros(0, device=dev)

    def _zero_state(self) -> None:
        super()._zero_state()
        self._tokens = [self._no_tokens()] * self.num_envs

    def _forget(self, mask: torch.Tensor) -> None:
        """Empty token streams for the envs of ``mask``."""
        for i in torch.as_tensor(mask).nonzero().flatten().tolist():
            self._tokens[i] = self._no_tokens()

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


class WindowPolicy(VintixPolicy):
    """The KV-cache decode kept inside the training distribution: every ``context_len // 2`` steps once the cache is
    full, the cache is rebuilt from the last ``context_len // 2`` tokens (replayed from an empty context).

    Then every key in the cache was computed from a window that starts at the last rebuild, as in training, and
    the newest token sees between ``context_len // 2`` and ``context_len - 1`` earlier tokens (training windows:
    0 to ``context_len - 1``). The replay costs one extra decode step per step on average (about 2x the plain
    cache), against ``context_len`` tokens per step for :class:`RecomputePolicy`. History-context models only.
    """

    def __init__(self, *args, **kwargs):
        kwargs["cuda_graph"] = False  # the rebuild replays eagerly; keep the whole decode eager and simple
        super().__init__(*args, **kwargs)
        if self.context != "history":
            raise ValueError("WindowPolicy is for history-context models (an episode context never slides)")
        self.decode_info = {"cuda_graph": False, "mode": "window", "reason": "cache rebuilt every context_len // 2"}

    def _alloc_state(self, N: int, group: str, C: int) -> None:
        super()._alloc_state(N, group, C)
        self._half = max(1, C // 2)
        f32 = dict(dtype=torch.float32, device=self.device)
        self._hist_obs = torch.zeros(N, self._half, self._obs_dim, **f32)  # the last half window, raw inputs
        self._hist_pa = torch.zeros(N, self._half, self._act_dim, **f32)  # normalised previous actions used
        self._hist_pr = torch.zeros(N, self._half, **f32)  # previous rewards used (0 after an episode start)
        self._t = 0  # tokens decoded since reset
        self._since = torch.zeros(N, dtype=torch.long, device=self.device)  # tokens since each env's last clear

    def _zero_state(self) -> None:
        super()._zero_state()
        self._t = 0
        self._since.zero_()

    def clear_context(self, mask: torch.Tensor) -> None:
        super().clear_context(mask)
        self._since[torch.as_tensor(mask, device=self.device).bool().reshape(-1)] = 0

    def _rebuild(self) -> None:
        """Empty the cache and replay each env's last half window (fewer tokens for an env cleared since)."""
        H, since, prev = self._half, self._since.clone(), self._prev_act.clone()
        super()._zero_state()  # keys, values, positions, ring slot (not the token history)
        no_start = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        for j in range(H):
            first = since == H - j  # an env cleared within the half window starts its replay here
            if bool(first.any()):
                VintixPolicy.clear_context(self, first)
            k = (self._t + j) % H  # the history ring's j-th oldest entry
            self._prev_act.copy_(self._hist_pa[:, k])
            VintixPolicy._step(self, self._hist_obs[:, k], self._hist_pr[:, k], no_start)  # the cache's step
        if bool((since == 0).any()):  # cleared just now: nothing of before
            VintixPolicy.clear_context(self, since == 0)
        self._prev_act.copy_(prev)
        self._since = since

    @torch.no_grad()
    def act(self, obs, prev_reward, episode_start):
        if self.group is not None and self._t >= self.context_len and (self._t - self.context_len) % self._half == 0:
            self._rebuild()
        return super().act(obs, prev_reward, episode_start)  # checks the inputs, then _step below

    def _step(self, obs: torch.Tensor, prev_reward: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """The cache's step, its inputs kept in the half-window history for the next rebuild."""
        pa = torch.where(start[:, None], torch.zeros_like(self._prev_act), self._prev_act)
        pr = torch.where(start, torch.zeros_like(prev_reward), prev_reward)
        a = super()._step(obs, prev_reward, start)
        j = self._t % self._half  # the history: a ring of the last half window, its oldest entry at t % H
        self._hist_obs[:, j], self._hist_pa[:, j], self._hist_pr[:, j] = obs, pa, pr
        self._t += 1
        self._since += 1
        return a
