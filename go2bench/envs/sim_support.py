"""Helpers of the batched Walk simulation: memory check, frame math, and per-env physics setters.

The setters are the only code besides :mod:`go2bench.envs.walk_sim` that writes Genesis state;
randomisation (``WalkConfig.randomization``) and task families (:mod:`go2bench.envs.tasks`) both go
through them, so friction, payload and motor strength mean the same thing everywhere.
"""

from __future__ import annotations

import torch

from go2bench.envs import streams

# Memory of a scene, measured for Go2 on the CPU backend (resident set after build and a few steps:
# +491 MB at 64 envs, +681 MB at 1024, +1295 MB at 4096), with a margin for larger robots.
_SCENE_BASE_BYTES = 600e6
_BYTES_PER_ENV = 0.3e6


def check_memory(num_envs: int, backend: str) -> None:
    """Refuse a scene that cannot fit, before Genesis allocates it (an oversized one swaps or is killed)."""
    need = _SCENE_BASE_BYTES + _BYTES_PER_ENV * num_envs
    if backend == "gpu":
        have = torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None
        where = "free GPU memory"
    else:
        have, where = _available_host_memory(), "available memory"
    if have is not None and need > have:
        raise MemoryError(
            f"num_envs={num_envs:,} needs about {need / 1e9:.1f} GB (about {_BYTES_PER_ENV / 1e6:.1f} MB per env "
            f"+ {_SCENE_BASE_BYTES / 1e9:.1f} GB per scene) but this machine has {have / 1e9:.1f} GB of {where}; "
            f"use at most about {max(1, int((have - _SCENE_BASE_BYTES) / _BYTES_PER_ENV)):,} envs"
        )


def _available_host_memory() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# Constants as 0-dim CPU tensors: they combine with tensors on any device like Python floats (same
# float32 arithmetic) but skip torch's per-call wrapping of a Python scalar (about 5 us per op on a CPU).
_ONE, _TWO = torch.tensor(1.0), torch.tensor(2.0)


def quat_rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate world-frame vectors ``v`` (..., 3) into the frame of unit quaternions ``q`` (..., 4, wxyz).

    Leading dimensions broadcast: q (N, 1, 4) rotates the K vectors of v (N, K, 3) in one pass.
    """
    w, u = q[..., :1], q[..., 1:]
    w2 = _TWO * w
    return v * (w2 * w - _ONE) - w2 * torch.cross(u, v, dim=-1) + _TWO * u * (u * v).sum(-1, keepdim=True)


def roll_pitch(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll and pitch (radians) of unit quaternions ``q`` (N, 4, wxyz)."""
    w, x, y, z = q.unbind(1)
    roll = torch.atan2(_TWO * (w * x + y * z), _ONE - _TWO * (x * x + y * y))
    pitch = torch.asin(torch.clamp(_TWO * (w * y - z * x), -1.0, 1.0))
    return roll, pitch


# ------------------------------------------------------------------ per-env physics
def randomize_dynamics(sim, mask: torch.Tensor) -> None:
    """``WalkConfig.randomization`` for the envs in ``mask``, drawn per env (``sim._uniform``)."""
    rand = sim.config.randomization
    if not rand.dynamics_enabled:
        return
    envs_idx = mask.nonzero().flatten()
    if rand.friction_range is not None:  # on the ground and the robot alike: the contact takes the maximum
        set_contact_friction(sim, sim._uniform(streams.FRICTION, *rand.friction_range, 1, envs_idx=envs_idx),
                             envs_idx)
    if rand.added_mass_range is not None and sim.base_mass is not None:
        set_added_mass(sim, sim._uniform(streams.MASS, *rand.added_mass_range, 1, envs_idx=envs_idx), envs_idx)
    if rand.motor_strength_range is not None:
        k = sim._uniform(streams.STRENGTH, *rand.motor_strength_range, 1, envs_idx=envs_idx)
        ones = torch.ones((len(envs_idx), len(sim.dofs_idx)), device=sim.device)
        set_motor_strength(sim, ones * k, envs_idx, torque_limits=False)


def initial_qpos(sim) -> torch.Tensor:
    """The reset qpos: ``sim.init_qpos`` (1, n_qs) without ``init_joint_noise`` (no op), else (N, n_qs) of every env
    with each joint at default + u * noise.

    u is uniform in [-1, 1) per env and joint, keyed by the env's (seed, env_index, trial, episode) like every draw
    (``sim._uniform``), so it does not depend on which envs reset together; clipped to the robot's joint limits.
    Rows of envs not being reset are computed too and ignored (one batched draw, no per-env indexing).
    """
    rd, noise = sim.robot_description, sim.config.randomization.init_joint_noise
    if noise is None:
        return sim.init_qpos
    f32 = dict(device=sim.device, dtype=torch.float32)
    q = sim.default_dof_pos + sim._uniform(streams.INIT_POSE, -noise, noise, rd.num_joints)
    q = torch.clamp(q, torch.tensor(rd.joint_lower, **f32), torch.tensor(rd.joint_upper, **f32))
    qpos = sim.init_qpos.expand(sim.num_envs, -1).clone()
    qpos[:, sim.qs_idx] = q
    return qpos


def set_contact_friction(sim, mu: torch.Tensor, envs_idx: torch.Tensor) -> None:
    """Friction coefficient ``mu`` (n,) of the contact between the ground and the robot, for envs ``envs_idx``.

    Genesis uses the maximum of the two surfaces' coefficients (both 1.0 in the assets), so the
    ratio is set on the ground plane and on every robot geom alike: the contact gets exactly ``mu``.
    """
    n = len(envs_idx)
    mu = mu.reshape(n, 1).to(device=sim.device, dtype=torch.float32)
    sim.robot.set_friction_ratio(mu.expand(n, sim.n_robot_links), list(range(sim.n_robot_links)), envs_idx)
    sim.plane.set_friction_ratio(mu, [0], envs_idx)


def set_added_mass(sim, added_kg: torch.Tensor, envs_idx: torch.Tensor) -> None:
    """Mass of the base link = the robot's base mass + ``added_kg`` (n,), for envs ``envs_idx`` (inertia unchanged)."""
    mass = sim.base_mass + added_kg.reshape(len(envs_idx), 1).to(device=sim.device, dtype=torch.float32)
    sim.robot.set_links_mass(mass, [sim.base_link_idx_local], envs_idx)


def set_motor_strength(sim, strength: torch.Tensor, envs_idx: torch.Tensor, torque_limits: bool = True) -> None:
    """Scale each motor's torque by ``strength`` (n, joints) for envs ``envs_idx``.

    The PD gains are scaled, and with ``torque_limits`` the torque limits too, so the delivered torque
    is exactly ``strength`` times the nominal one. ``torque_limits=False`` is the older randomisation
    (gains only), kept for its numbers.
    """
    rd = sim.robot_description
    k = strength.to(device=sim.device, dtype=torch.float32)
    sim.robot.set_dofs_kp(k * rd.kp, sim.dofs_idx, envs_idx)
    sim.robot.set_dofs_kv(k * rd.kd, sim.dofs_idx, envs_idx)
    if torque_limits:
        limit = k * torch.tensor(rd.torque_limits, device=sim.device, dtype=torch.float32)
        sim.robot.set_dofs_force_range(-limit, limit, sim.dofs_idx, envs_idx)
