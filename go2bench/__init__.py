"""go2bench: in-context reinforcement learning benchmark on Genesis-simulated quadrupeds.

``import go2bench`` registers ``Go2Walk-v0`` and ``MiniCheetahWalk-v0`` with Gymnasium. It is
cheap: Genesis and torch are imported only when an environment is made.
"""

from go2bench._version import __version__
from go2bench.envs import register_envs as _register_envs

__all__ = ["__version__"]

_register_envs()
