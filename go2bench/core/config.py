"""Typed configs: dataclasses built from plain dicts or YAML, with unknown keys rejected.

Every stage's config (env, collection, training, evaluation) is a dataclass; this module turns a
YAML mapping into one, recursively, checking field names and basic types so that a typo in a
config file is an error that names the file and the key, never a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or mapping that does not match its dataclass."""


_ECHO_LIMIT = 80


def short_repr(value: Any, limit: int = _ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters: errors never echo a huge value back."""
    text = repr(value) if not isinstance(value, (dict, list, tuple)) or len(value) < 64 else f"<{type(value).__name__} of {len(value)} items>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _construct_unique_mapping(loader, node, deep=False):
    """A mapping whose keys are all different (YAML keeps the last of a repeated key silently)."""
    keys = [loader.construct_object(k, deep=True) for k, _ in node.value]
    dup = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if dup is not None:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate key {dup!r}", node.start_mark)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


def _alias_error(event) -> yaml.YAMLError:
    return yaml.composer.ComposerError(
        None, None, f"YAML aliases (*{event.anchor}) are not allowed in go2bench configs; write the value out",
        event.start_mark)


class _NoAliasSafeLoader(yaml.SafeLoader):
    """``yaml.safe_load`` without anchors/aliases: a few hundred bytes of nested aliases expand to
    gigabytes, and configs never need them. (Pure Python: used where PyYAML has no libyaml.)"""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _alias_error(self.peek_event())
        return super().compose_node(parent, index)

    construct_mapping = _construct_unique_mapping


# With libyaml, the same rules about 5x faster (the suite files hold ~126k nodes; every process reads them):
# one C pass over the events refuses aliases, then libyaml composes and SafeConstructor builds the data.
_CSafeLoader = getattr(yaml, "CSafeLoader", None)
_UniqueKeyCLoader = type("_UniqueKeyCLoader", (_CSafeLoader,), {"construct_mapping": _construct_unique_mapping}) \
    if _CSafeLoader is not None else None


def read_yaml(path: str | Path) -> Any:
    """The data of a YAML file (safe types only, no aliases); one-line :class:`ConfigError` otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, where: str = "config") -> Any:
    """YAML text to data (safe types only, no aliases); one-line :class:`ConfigError` otherwise."""
    try:
        if _UniqueKeyCLoader is None:
            return yaml.load(text, Loader=_NoAliasSafeLoader)  # noqa: S506 - a SafeLoader subclass
        for event in yaml.parse(text, Loader=_CSafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise _alias_error(event)
        return yaml.load(text, Loader=_UniqueKeyCLoader)  # noqa: S506 - a CSafeLoader subclass
    except yaml.YAMLError as e:
        first = " ".join(str(e).split())
        raise ConfigError(f"{where}: not valid YAML: {first[:300]}") from None


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; ``where`` names the source in error messages."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"{where}: keys must be strings, got {short_repr(bad_keys[0])}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {short_repr(unknown, 200)} for {cls.__name__}; known keys: {sorted(fields)}")
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # a required field is missing or a value is out of range
        raise ConfigError(f"{where}: {e}") from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {short_repr(value)} matches none of {args}")
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {short_repr(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {short_repr(value)}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {short_repr(value)}")
        return {_convert(args[0], k, where): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {short_repr(value)} is not one of {list(args)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {short_repr(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {short_repr(value)}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {short_repr(value)}")
        return value
    if tp is Any:
        return value
    raise ConfigError(f"{where}: unsupported field type {tp!r}")


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load dataclass ``cls`` from a YAML file, naming the file in every error."""
    data = read_yaml(path)
    return from_dict(cls, data if data is not None else {}, str(path))


# ``field(metadata=OMIT_AT_DEFAULT)``: a field added after configs were written, hashed and compared (reference
# files are named by a WalkConfig's hash): left out of :func:`to_dict` at its default, so those stay valid.
OMIT_AT_DEFAULT = {"omit_at_default": True}


def to_dict(obj: Any) -> Any:
    """A dataclass as plain JSON/YAML-safe data (tuples become lists; OMIT_AT_DEFAULT fields at default left out)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_at_default") and getattr(obj, f.name) == f.default)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
