"""Agents by name, for ``go2bench eval --agent NAME[:checkpoint]``.

Built-ins:

* ``random``: uniform actions in [-1, 1], seeded (no checkpoint);
* ``teacher``: the shipped PPO teacher of the env, or ``teacher:PATH`` (an SB3 zip or a run directory);
* ``teacher-privileged``: the privileged teacher of the evaluated task family (``make_agent(...,
  family=F)``: ``go2bench/zoo/<env>/<F>/privileged``), or ``teacher-privileged:PATH``; it reads the
  privileged observation (``agent.privileged_family``: evaluate it in an env made with
  ``family=F, privileged=True``, or give it ``agent.use_task_source(...)``);
* ``teacher-blind``: the blind teacher of the family (``go2bench/zoo/<env>/<F>/blind``), or ``teacher-blind:PATH``;
* ``vintix``: a Vintix checkpoint trained on whole histories (``vintix:PATH``; without one, in a task
  family the family's shipped model ``go2bench/zoo/<env>/<F>/vintix/vintix.pt`` where there is one, else
  the default-task ``go2bench/zoo/vintix/vintix.pt``);
* ``vintix-episodic``: a Vintix checkpoint trained with ``go2bench train --context episode`` (every
  window inside one episode): the no-context baseline, ``vintix-episodic:PATH`` (without one, in a task
  family: ``go2bench/zoo/<env>/<F>/vintix-episodic/vintix.pt`` where shipped);
* ``vintix-nocontext``: a diagnostic, a ``vintix`` model with each env's context cleared at every
  episode start (which it reads as the start of a noisy history; not a baseline);
* ``vintix-recompute``: a diagnostic, a ``vintix`` model decoded exactly as it was trained, a fresh forward
  over each env's last ``context_len`` tokens every step (the default decode's sliding-window KV cache
  differs from that once a stream outgrows the context; see :mod:`go2bench.vintix.recompute`). Slow;
* ``vintix-window``: the same model with the KV cache rebuilt from the last half window every half window, so
  that every step is a training window again, at about twice the cache's cost.

Third-party agents register a factory in the entry-point group ``go2bench.agents``::

    [project.entry-points."go2bench.agents"]
    my-agent = "my_package.agent:make_agent"

where ``make_agent(env_id: str, checkpoint: str | None, device: str, seed: int)`` returns an object
implementing :class:`go2bench.agents.protocol.BatchedAgent`. Built-in names take precedence over
entry points of the same name.
"""

from __future__ import annotations

import warnings
from importlib import metadata
from typing import Any, Callable

ENTRY_POINT_GROUP = "go2bench.agents"
Factory = Callable[[str, "str | None", str, int], Any]

__all__ = [
    "ENTRY_POINT_GROUP",
    "BUILTIN_AGENTS",
    "UnknownAgentError",
    "available_agents",
    "parse_spec",
    "make_agent",
]


class UnknownAgentError(ValueError):
    """No built-in or entry-point agent of that name."""


# ------------------------------------------------------------------------------------- built-ins
def _random(env_id: str, checkpoint: str | None, device: str, seed: int):
    from go2bench.agents.random import RandomAgent

    if checkpoint:
        raise ValueError("the random agent takes no checkpoint (use --agent random)")
    return RandomAgent(seed=seed)


def _teacher(env_id: str, checkpoint: str | None, device: str, seed: int, trust_checkpoint: bool = False,
             family: str | None = None, privileged: bool | None = None):
    """``teacher`` (privileged None): the default-task teacher, or PATH (a family teacher's must be of ``family``).

    With ``privileged`` True/False: the family's privileged/blind teacher, from the zoo or PATH.
    """
    from go2bench.agents.teacher import load_teacher

    if checkpoint is None:
        agent = load_teacher(env_id, device=device, trust_checkpoint=trust_checkpoint,
                             family=family if privileged is not None else None, privileged=privileged)
    else:
        agent = load_teacher(checkpoint, device=device, trust_checkpoint=trust_checkpoint, privileged=privileged)
        if family is not None and agent.family is not None and agent.family != family:
            raise ValueError(f"the teacher {agent.source} was trained on the {agent.family!r} family, not {family!r}")
    card_env = (agent.model_card or {}).get("env_id")
    if card_env and card_env != env_id:
        raise ValueError(f"the teacher {agent.source} was trained on {card_env}, not {env_id}")
    return agent


def _family_teacher(privileged: bool):
    kind = "privileged" if privileged else "blind"

    def factory(env_id: str, checkpoint: str | None, device: str, seed: int, trust_checkpoint: bool = False,
                family: str | None = None):
        if checkpoint is None and family is None:
            from go2bench.envs.families import FAMILIES

            raise ValueError(f"teacher-{kind} is the {kind} teacher of a task family: evaluate with a family "
                             f"(--family {'|'.join(FAMILIES)}) or give a checkpoint (teacher-{kind}:PATH)")
        agent = _teacher(env_id, checkpoint, device, seed, trust_checkpoint, family=family, privileged=privileged)
        if agent.family is None:
            raise ValueError(f"teacher-{kind}: {agent.source} is not a task-family teacher (its card has no family)")
        return agent

    factory.__name__ = f"_teacher_{kind}"
    return factory


_teacher_privileged = _family_teacher(True)
_teacher_blind = _family_teacher(False)


def _shipped_family_vintix(env_id: str, family: str | None, context: str) -> str | None:
    """The zoo's Vintix of ``env_id``'s ``family`` trained with ``context``, if one is shipped."""
    from go2bench.agents.vintix_agent import family_checkpoint

    path = family_checkpoint(env_id, family, context) if family else None
    return str(path) if path is not None and path.exists() else None


def _vintix_episodic(env_id: str, checkpoint: str | None, device: str, seed: int, family: str | None = None):
    from go2bench.agents.vintix_agent import load_vintix_agent

    checkpoint = checkpoint or _shipped_family_vintix(env_id, family, "episode")
    if checkpoint is None:
        raise ValueError("vintix-episodic needs a checkpoint trained with `go2bench train --context episode`: "
                         "give it as vintix-episodic:PATH"
                         + (f" (none is shipped for {env_id}'s {family} family)" if family else ""))
    return load_vintix_agent(checkpoint, device=device, no_context=False, context="episode")


def _vintix_decode(decode: str):
    """The ``vintix`` agent family (history-context checkpoints) with one decode of ``load_vintix_agent``."""

    def factory(env_id: str, checkpoint: str | None, device: str, seed: int, family: str | None = None):
        from go2bench.agents.vintix_agent import load_vintix_agent

        checkpoint = checkpoint or _shipped_family_vintix(env_id, family, "history")
        return load_vintix_agent(checkpoint, device=device, context="history", decode=decode)

    factory.__name__ = f"_vintix_{decode}"
    return factory


def _vintix_nocontext(env_id: str, checkpoint: str | None, device: str, seed: int):
    from go2bench.agents.vintix_agent import load_vintix_agent

    return load_vintix_agent(checkpoint, device=device, no_context=True, context="history")


# The built-ins that load a teacher checkpoint: they also take trust_checkpoint and family.
TEACHER_AGENTS = ("teacher", "teacher-privileged", "teacher-blind")
# The built-ins whose default checkpoint depends on the task family evaluated: they also take family.
FAMILY_VINTIX_AGENTS = ("vintix", "vintix-episodic", "vintix-recompute", "vintix-window")

BUILTIN_AGENTS: dict[str, Factory] = {
    "random": _random,
    "teacher": _teacher,
    "teacher-privileged": _teacher_privileged,
    "teacher-blind": _teacher_blind,
    "vintix": _vintix_decode("cache"),
    "vintix-episodic": _vintix_episodic,
    "vintix-nocontext": _vintix_nocontext,
    "vintix-recompute": _vintix_decode("recompute"),
    "vintix-window": _vintix_decode("window"),
}


# ------------------------------------------------------------------------------------- lookup
def _entry_points() -> dict[str, Any]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    out: dict[str, Any] = {}
    for ep in eps:
        if ep.name in out and out[ep.name].value != ep.value:
            warnings.warn(
                f"two {ENTRY_POINT_GROUP!r} entry points named {ep.name!r} ({out[ep.name].value} and {ep.value}); "
                f"using the first", stacklevel=3,
            )
            continue
        out.setdefault(ep.name, ep)
    return out


def available_agents() -> dict[str, str]:
    """Every agent name -> where it comes from ("built-in" or the entry point's ``module:attr``)."""
    names = {name: "built-in" for name in BUILTIN_AGENTS}
    for name, ep in _entry_points().items():
        names.setdefault(name, ep.value)
    return names


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"NAME[:checkpoint]"`` -> (name, checkpoint or None); the name is not checked here."""
    spec = spec.strip()
    if not spec:
        raise ValueError("empty agent spec; expected NAME[:checkpoint]")
    name, sep, checkpoint = spec.partition(":")
    return name, (checkpoint or None) if sep else None


def resolve_factory(name: str) -> Factory:
    """The factory of agent ``name``; :class:`UnknownAgentError` lists the known names."""
    if name in BUILTIN_AGENTS:
        return BUILTIN_AGENTS[name]
    eps = _entry_points()
    if name in eps:
        try:
            factory = eps[name].load()
        except Exception as e:  # noqa: BLE001 - report which plug-in failed
            raise ImportError(f"agent {name!r}: loading entry point {eps[name].value!r} failed: {e}") from e
        if not callable(factory):
            raise ImportError(f"agent {name!r}: entry point {eps[name].value!r} is not callable")
        return factory
    known = ", ".join(sorted(available_agents()))
    raise UnknownAgentError(
        f"unknown agent {name!r}; known agents: {known}. A checkpoint goes after the name (teacher:PATH); "
        f"third-party agents register a factory in the {ENTRY_POINT_GROUP!r} entry-point group."
    )


class AgentError(RuntimeError):
    """Agent code (a plug-in's factory, ``reset`` or ``act``) failed; the message names the agent."""


def make_agent(spec: str, env_id: str, device: str = "cpu", seed: int = 0, *, trust_checkpoint: bool = False,
               family: str | None = None):
    """Build the agent of ``spec`` (``NAME[:checkpoint]``) for ``env_id``, in the batched agent protocol.

    The returned agent has ``name`` (its own, else the spec's name), ``spec`` and ``checkpoint``
    (its own, else the spec's checkpoint). Results are labelled with the registered name
    (:func:`parse_spec`), not the agent's own ``name``. ``trust_checkpoint``: let stable-baselines3
    unpickle a teacher zip that has no model card (runs any code in it; only for files you wrote).
    ``family``: the task family being evaluated; the built-in teachers take it (``teacher-privileged``
    and ``teacher-blind`` load that family's teacher; a family teacher's PATH must be of it; ``vintix`` and
    ``vintix-episodic`` without a PATH load the family's shipped model where there is one), other agents are
    not given it.
    """
    from go2bench.agents.protocol import as_batched_agent

    name, checkpoint = parse_spec(spec)
    factory = resolve_factory(name)
    if name in TEACHER_AGENTS:
        agent = as_batched_agent(factory(env_id, checkpoint, device, seed, trust_checkpoint=trust_checkpoint,
                                         family=family))
    elif name in FAMILY_VINTIX_AGENTS:
        agent = as_batched_agent(factory(env_id, checkpoint, device, seed, family=family))
    elif name in BUILTIN_AGENTS:
        agent = as_batched_agent(factory(env_id, checkpoint, device, seed))
    else:  # a plug-in: whatever its factory does wrong is reported as that agent's failure
        try:
            agent = factory(env_id, checkpoint, device, seed)
        except Exception as e:  # noqa: BLE001 - third-party code
            raise AgentError(f"agent {name!r}: its factory raised {type(e).__name__}: {e}") from e
        if agent is None:
            raise AgentError(f"agent {name!r}: its factory returned None instead of an agent")
        try:
            agent = as_batched_agent(agent)
        except TypeError as e:
            raise AgentError(f"agent {name!r}: {e}") from None
    for attr, value in (("name", name), ("spec", spec), ("checkpoint", checkpoint)):
        if getattr(agent, attr, None) is None:
            try:
                setattr(agent, attr, value)
            except AttributeError:  # read-only attribute (a property): keep the agent's own
                pass
    return agent
