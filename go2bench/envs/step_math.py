"""The per-step tensor math of the Walk simulation, written as few, cheap ops.

Why: at 64 envs on a CPU a torch op costs microseconds whatever its size, so the task's math
(frame rotations, observation, reward terms, termination, divergence) once cost more than a third
of a control step. Three habits keep it small, each with the arithmetic of the one-op-per-quantity
code it replaced, so that results are bit-identical to it (``tests/test_step_fusion.py``):

* batch what is computed alike (the three body-frame rotations are one broadcast rotation, the
  observation one concatenation and one scaling, the divergence test one comparison);
* constants are tensors made once (:class:`StepConstants`): a Python float in an op costs torch
  about 5 us to wrap on every call, a 0-dim CPU tensor nothing, for the same float32 arithmetic;
* no per-step Python containers or loops over terms: the reward terms are computed together
  (:func:`reward_terms`) and stay one (N, terms) tensor (:class:`RewardTerms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch


def _k(value, dtype=torch.float32) -> torch.Tensor:
    """A 0-dim CPU constant: it combines with tensors on any device as a Python scalar would, but a torch op
    on a GPU accepts at most one CPU scalar among its tensor arguments (use device constants there)."""
    return torch.tensor(value, dtype=dtype)


# The reward terms :func:`reward_terms` computes, in its column order: one per field of
# ``walk_config.RewardScales`` (the simulation refuses to build if the two lists differ).
REWARD_TERM_NAMES = ("tracking_lin_vel", "tracking_ang_vel", "lin_vel_z", "base_height", "action_rate",
                     "similar_to_default")


@dataclass(frozen=True)
class StepConstants:
    """Everything the step math multiplies, compares or indexes with, made once per simulation."""

    weights: torch.Tensor  # (T,) reward weight * dt, REWARD_TERM_NAMES order
    zero_weight: torch.Tensor | None  # (T,) bool: terms of weight 0 (reported as exact zeros), None if there are none
    obs_scale: torch.Tensor  # (obs_dim,) one scale per observation slot
    zero_commands: torch.Tensor  # (N, 3) the command block of an observation that hides it
    finite_bounds: torch.Tensor  # (obs_dim + J + 3,) bounds of |obs|, |dof_vel|, |base_lin_vel| (divergence)
    velocity_idx: torch.Tensor  # indices of vx, vy, yaw rate in the flattened (N, 3 * 3) body-frame block
    one: torch.Tensor  # int64 1 (the episode counter's step)
    first_only: torch.Tensor  # (2,) = (1, 0): adds the vx error to the vy error only
    one_f: torch.Tensor
    minus_two: torch.Tensor
    action_scale: torch.Tensor
    neg_tracking_sigma: torch.Tensor
    height_target: torch.Tensor
    tilt_limits: torch.Tensor  # (2,) roll and pitch limits, radians

    @classmethod
    def build(cls, sim, obs_dim: int, weights: Sequence[float], bounds: tuple[float, float, float]) -> StepConstants:
        rd, cfg, n, j = sim.robot_description, sim.config, sim.num_envs, sim.robot_description.num_joints
        f32 = dict(device=sim.device, dtype=torch.float32)
        s = cfg.obs_scales
        scale = ([s.ang_vel] * 3 + [1.0] * 3 + [s.lin_vel, s.lin_vel, s.ang_vel] + [s.dof_pos] * j + [s.dof_vel] * j
                 + [1.0] * (obs_dim - 9 - 2 * j))  # the last action and the task's theta are not scaled
        obs_bound, dof_vel_bound, lin_vel_bound = bounds
        return cls(
            weights=torch.tensor(list(weights), **f32),
            zero_weight=torch.tensor([w == 0.0 for w in weights], device=sim.device) if 0.0 in weights else None,
            obs_scale=torch.tensor(scale, **f32), zero_commands=torch.zeros((n, 3), **f32),
            finite_bounds=torch.tensor([obs_bound] * obs_dim + [dof_vel_bound] * j + [lin_vel_bound] * 3, **f32),
            velocity_idx=torch.tensor([0, 1, 5], device=sim.device), one=_k(1, torch.int64),
            first_only=torch.tensor([1.0, 0.0], **f32),
            # on the device: a GPU op takes one CPU scalar at most (tests/test_step_fusion.py checks)
            one_f=torch.tensor(1.0, **f32), minus_two=torch.tensor(-2.0, **f32),
            action_scale=_k(rd.action_scale),
            neg_tracking_sigma=_k(-cfg.tracking_sigma), height_target=_k(sim.height_target),
            tilt_limits=torch.tensor([math.radians(rd.termination_roll_deg), math.radians(rd.termination_pitch_deg)],
                                     **f32),
        )


def check_reward_terms(weight_names: Sequence[str]) -> None:
    """The reward weights (``RewardScales`` fields) must name the terms :func:`reward_terms` computes, in order.

    A weight without a term, or a term without a weight, would silently drop a term.
    """
    if tuple(weight_names) != REWARD_TERM_NAMES:
        missing = sorted(set(weight_names) - set(REWARD_TERM_NAMES))
        unused = sorted(set(REWARD_TERM_NAMES) - set(weight_names))
        raise TypeError(
            f"reward terms do not match RewardScales: weights without a computed term {missing}, terms without "
            f"a weight {unused} (or another order); RewardScales and step_math.reward_terms must list the same terms"
        )


def reward_terms(k: StepConstants, velocity_error: torch.Tensor, lin_vel_z: torch.Tensor, base_z: torch.Tensor,
                 actions: torch.Tensor, last_actions: torch.Tensor, dof_offset: torch.Tensor) -> torch.Tensor:
    """(N, 6) unweighted reward terms, columns in ``REWARD_TERM_NAMES`` order (sigma = tracking_sigma):

    tracking_lin_vel    exp(-((cmd_vx - vx)^2 + (cmd_vy - vy)^2) / sigma)    body-frame base velocity
    tracking_ang_vel    exp(-(cmd_yaw - yaw rate)^2 / sigma)
    lin_vel_z           vz^2
    base_height         (base z - height target)^2
    action_rate         sum over joints of (last action - action)^2
    similar_to_default  sum over joints of |joint position - default|

    ``velocity_error`` is the command minus the body-frame (vx, vy, yaw rate), (N, 3); ``lin_vel_z``
    and ``base_z`` are (N, 1); ``exp(e / -sigma)`` is ``exp(-e / sigma)`` bit for bit.
    """
    # squares of the velocity errors, vz and the height error in one op
    sq = torch.cat((velocity_error, lin_vel_z, base_z - k.height_target), 1) ** 2
    # (vx^2 + vy^2, yaw^2): addcmul adds vx^2 times 1 to vy^2 and times 0 to yaw^2, exactly
    tracking = torch.exp(torch.addcmul(sq[:, 1:3], sq[:, :1], k.first_only) / k.neg_tracking_sigma)
    action_rate = ((last_actions - actions) ** 2).sum(1, keepdim=True)
    pose = dof_offset.abs().sum(1, keepdim=True)
    return torch.cat((tracking, sq[:, 3:], action_rate, pose), 1)


def tilted(k: StepConstants, body: torch.Tensor, quat: torch.Tensor) -> torch.Tensor:
    """(N,) bool: |roll| or |pitch| beyond its limit; |angles| of :func:`sim_support.roll_pitch`, bit for bit.

    ``body`` (N, 3, 3) holds the projected gravity g in row 2 (rotated by ``quat_rotate_inverse``,
    where products by 2 are exact): g_x = 2 (w y - z x), pitch's sine, and -g_y = 2 (w x + y z),
    roll's numerator, rounded as roll_pitch rounds them (and |atan2(-a, b)| = |atan2(a, b)|). Only
    roll's denominator 1 - 2 (x^2 + y^2) is computed again (g_z = -(2 w^2 - 1 + 2 z^2) rounds
    otherwise). Fewer ops than computing the angles from the quaternion.
    """
    xy = quat[:, 1:3]
    roll = torch.atan2(body[:, 2, 1], torch.addcmul(k.one_f, (xy * xy).sum(1), k.minus_two))  # 1 - 2 (x^2 + y^2)
    pitch = torch.asin(torch.clamp(body[:, 2, 0], -1.0, 1.0))
    return (torch.stack((roll, pitch), 1).abs_() > k.tilt_limits).any(1)


def sequential_sum(columns: torch.Tensor) -> torch.Tensor:
    """Row sums of ``columns`` (N, T), added in column order (``Tensor.sum`` pairs them otherwise and may round otherwise)."""
    first, *rest = columns.unbind(1)
    if not rest:
        return first.clone()
    out = first + rest[0]
    for row in rest[1:]:
        out += row
    return out


class RewardTerms(Mapping[str, torch.Tensor]):
    """``{term name: (N,) tensor}`` as the columns of one (N, T) tensor ``matrix``; no per-step dict to build."""

    def __init__(self, names: Sequence[str], matrix: torch.Tensor, index: Mapping[str, int] | None = None) -> None:
        self.names = tuple(names)
        self.matrix = matrix
        self._index = index if index is not None else {k: i for i, k in enumerate(self.names)}

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.matrix[:, self._index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def terms_matrix(terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The (N, T) tensor of a step's reward terms, whatever mapping holds them."""
    if isinstance(terms, RewardTerms):
        return terms.matrix
    return torch.stack(list(terms.values()), 1)


def within_bounds(values: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """(N,) bool: every ``|values[i, j]| < bounds[j]``; False for NaN (comparisons with NaN are False)."""
    return (values.abs() < bounds).all(1)
