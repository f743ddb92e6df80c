"""One chunk of the collection's step loop, in as few torch ops per step as the rows allow.

Why: a step of the loop is the teacher, the blend, the simulation step and the recording; on a GPU each
torch op is a kernel launch of several microseconds of host time, and on the CPU each costs a few
microseconds of dispatch, so the loop's own ops add directly to the simulation's step (issue 16).  Per step
this does the teacher (:mod:`~go2bench.collect.teacher_mlp`), one clamp into the chunk's demonstrator row,
the blend as ``lerp`` into the action row and an in-place clamp, one copy each for the observation, the
episode step and the reward, one ``or`` for ``done`` into a per-chunk buffer and the done check (the one
host sync per step, as the raw loop has): 15 ops for a 3-layer teacher.  Everything else is per chunk:
the rows' views (one ``unbind`` per buffer), and which rows are recorded and which histories end, from
the chunk's ``done`` flags at its end (a history stops recording after the step whose episode ends at or
past its last row ``N - 1``), where the loop before did it per step.  Same values, same order: the bytes
written are the same.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["step_chunk"]


def step_chunk(sim, actor: Callable[[torch.Tensor], torch.Tensor], obs: torch.Tensor, bufs: dict[str, torch.Tensor],
               grid: torch.Tensor, eps: torch.Tensor, noise: torch.Tensor, active: torch.Tensor,
               write_from: torch.Tensor, last_row: int, bounds,
               cut: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``sim`` for the chunk's ``C`` steps, recording into ``bufs``; return the next observation and
    which histories are still active after the chunk.

    ``bufs``: (C, H, ...) buffers "obs", "action", "reward", "step_num", "rec" and optionally "demo";
    ``grid``: (C, H) row index of every step in its history; ``eps``: (C, H) noise weights; ``noise``:
    (C, H, A) noise actions ``low + (high - low) * u``; ``active``: (H,) histories still collecting;
    ``write_from``: (H,) first row to write (resume); ``last_row``: ``N - 1``; ``bounds``: (teacher
    low, teacher high, action low, action high), each (A,); ``cut``: (H,) histories that stop right after
    ``last_row`` without ending the episode in progress (:mod:`~go2bench.collect.segments`).  Runs under
    ``torch.no_grad()``.
    """
    t_low, t_high, low, high = bounds
    C, H = grid.shape
    D = bufs["obs"].shape[-1]
    full = obs.shape[1] == D  # else the agent's observation is the first D columns (a family's theta is last)
    obs_rows, act_rows, rew_rows, step_rows = (bufs[k].unbind(0) for k in ("obs", "action", "reward", "step_num"))
    demo = bufs.get("demo")
    demo_rows = demo.unbind(0) if demo is not None else (torch.empty_like(noise[0]),) * C
    eps_rows, noise_rows = eps.unsqueeze(-1).unbind(0), noise.unbind(0)
    done = torch.empty((C, H), dtype=torch.bool, device=grid.device)
    done_rows = done.unbind(0)
    for t in range(C):
        a = torch.clamp(actor(obs), t_low, t_high, out=demo_rows[t])
        act = torch.lerp(a, noise_rows[t], eps_rows[t], out=act_rows[t]).clamp_(low, high)
        obs_rows[t].copy_(obs if full else obs[:, :D])
        step_rows[t].copy_(sim.episode_step)
        r = sim.step(act)  # the simulation clips a copy: the row stays the chunk's
        rew_rows[t].copy_(r.reward)
        d = torch.bitwise_or(r.terminated, r.truncated, out=done_rows[t])
        obs = sim.reset(d) if bool(d.any()) else r.obs  # the one host sync per step
    # A history's episode that ends at or past its last row ends the history: its later steps are not recorded.
    stops = (done if cut is None else done | cut) & (grid >= last_row)
    ended = stops.cumsum(0)  # stops up to and including each step
    rec = bufs["rec"]
    torch.ge(grid, write_from, out=rec)
    rec &= active
    rec &= ended == stops  # none before this step
    return obs, active & (ended[-1] == 0)
