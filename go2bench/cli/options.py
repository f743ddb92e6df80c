"""Click options generated from a config dataclass: one option per field, its default the field's."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable

import click

__all__ = ["dataclass_options", "field_default"]


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _click_type(tp: Any) -> tuple[Any, bool]:
    """(click type, multiple) of a field type; ``X | None`` is X with the default None."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        (tp,) = [a for a in args if a is not type(None)]
        return _click_type(tp)
    if origin in (list, tuple):
        return _click_type(args[0])[0], True
    if origin is typing.Literal:
        return click.Choice([str(a) for a in args]), False
    return tp, False


def dataclass_options(
    cls: type,
    *,
    help: dict[str, str],
    names: dict[str, tuple[str, ...]] | None = None,
    types_: dict[str, Any] | None = None,
    skip: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
    hide_defaults: tuple[str, ...] = (),
    defaults_from_config: bool = True,
    spell: Callable[[str], tuple[str, ...]] = lambda name: (f"--{name.replace('_', '-')}",),
) -> Callable:
    """A decorator adding an option for every field of ``cls`` but ``skip``, in field order.

    The option's parameter is the field's name, its flags ``spell(name)`` unless ``names`` gives
    them, its type from the annotation (``types_`` overrides; bools are flags, lists repeat).
    ``defaults_from_config=False``: every option defaults to None (nothing given: keep what a config
    file says) and its help shows the field's default (except for ``hide_defaults``) instead.
    """
    hints = typing.get_type_hints(cls)

    def decorate(fn: Callable) -> Callable:
        for f in reversed([f for f in dataclasses.fields(cls) if f.init and f.name not in skip]):
            default = field_default(f)
            click_type, multiple = ((types_[f.name], False) if f.name in (types_ or {})
                                    else _click_type(hints[f.name]))
            kw: dict[str, Any] = {"help": help.get(f.name, ""), "multiple": multiple, "required": f.name in required}
            if hints[f.name] is bool:
                kw.update(is_flag=True, default=None if not defaults_from_config else default)
            else:
                kw["type"] = (types_ or {}).get(f.name, click_type)
                if f.name in required:
                    pass
                elif defaults_from_config:
                    kw.update(default=default, show_default=default is not None)
                else:
                    kw["default"] = None
                    if default is not None and f.name not in hide_defaults:
                        kw["help"] = f"{kw['help']} [default: {default}]".strip()
            decls = (names or {}).get(f.name) or spell(f.name)
            fn = click.option(*decls, f.name, **kw)(fn)
        return fn

    return decorate
