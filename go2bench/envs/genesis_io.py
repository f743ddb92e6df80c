"""The Genesis calls of one control step, made as cheap as Genesis' public API allows.

Why: at 64 envs on a CPU, the PD targets and the six state getters cost about as much as all of the
task's math; two equivalent forms of the same calls save about a fifth of that (measured in
``benchmarks/step_profile.py``):

* the joints are addressed as one slice of consecutive dofs plus a permutation (one index_select),
  which Genesis indexes several times faster than a list of dofs;
* the base pose and velocity are read with ``relative=False`` when the robot's base link has no
  offset from its authored origin (then ``relative=True``, the default, transforms by the identity
  at a cost); offsets are fixed when the scene is built, so this is checked once, right after it.

Values are bit-identical to the straightforward calls (``tests/test_step_fusion.py``).
"""

from __future__ import annotations

from typing import Sequence

import torch


class RobotIO:
    """PD targets in, base and joint state out, for the joints ``dofs_idx`` (local dof indices, joint order)."""

    def __init__(self, robot, dofs_idx: Sequence[int], device) -> None:
        self.robot = robot
        lo, n = min(dofs_idx), len(dofs_idx)
        self.block: slice | list[int] = list(dofs_idx)
        self.to_joints = self.to_dofs = None  # index tensors; None when no permutation is needed
        if sorted(dofs_idx) == list(range(lo, lo + n)):
            self.block = slice(lo, lo + n)
            order = [i - lo for i in dofs_idx]  # column of each joint in the block
            if order != list(range(n)):
                self.to_joints = torch.tensor(order, device=device)
                self.to_dofs = torch.argsort(self.to_joints)
        self.relative = not (torch.equal(robot.get_pos(), robot.get_pos(relative=False))
                             and torch.equal(robot.get_quat(), robot.get_quat(relative=False)))

    def control(self, targets: torch.Tensor) -> None:
        """PD position targets (N, joints), joint order."""
        t = targets if self.to_dofs is None else targets.index_select(1, self.to_dofs)
        self.robot.control_dofs_position(t, self.block)

    def base(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Base position, quaternion (wxyz), linear and angular velocity, world frame, (N, 3 or 4) each."""
        r, rel = self.robot, self.relative
        return r.get_pos(relative=rel), r.get_quat(relative=rel), r.get_vel(relative=rel), r.get_ang()

    def joints(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint positions and velocities (N, joints), joint order."""
        pos, vel = self.robot.get_dofs_position(self.block), self.robot.get_dofs_velocity(self.block)
        if self.to_joints is None:
            return pos, vel
        return pos.index_select(1, self.to_joints), vel.index_select(1, self.to_joints)
