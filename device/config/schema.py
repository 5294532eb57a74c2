"""Turn a parsed TOML table into frozen settings dataclasses, checking every key and value.

Settings classes declare their limits in field metadata, built with :func:`setting`::

    @dataclass(frozen=True)
    class VadSettings:
        aggressiveness: int = setting(2, "webrtcvad aggressiveness, 0 (lenient) .. 3 (strict)", min=0, max=3)

Errors name the full key path, the bad value and what is allowed, so a typo never becomes a traceback.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from sttkb.errors import SttkbError


class ConfigError(SttkbError, ValueError):
    """The configuration file has an unknown key or a bad value."""


def setting(default: Any, doc: str, *, choices: tuple | None = None, min: float | None = None,
            max: float | None = None) -> Any:
    """A dataclass field with a docstring (units!) and optional limits checked at load time."""
    meta = {"doc": doc, "choices": choices, "min": min, "max": max}
    # Defaults take the same immutable shapes the loader produces (list -> tuple, table -> read-only mapping), so
    # a loaded value equals the default it repeats and frozen settings stay immutable.
    if isinstance(default, (list, tuple, set)):
        frozen = tuple(default)
        return dataclasses.field(default=frozen, metadata=meta)
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: types.MappingProxyType(dict(default)), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "nothing (leave the key out)"
    if origin is list:
        return "a list of " + {int: "integers", float: "numbers", str: "strings"}.get(
            typing.get_args(tp)[0], _describe(typing.get_args(tp)[0]))
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a table of {_describe(k)} = {_describe(v)}"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _convert(value, arg, path)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{path}: {value!r} is not valid; expected {_describe(tp)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{path}: expected nothing")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {value!r} is not valid; expected {_describe(tp)}")
        (item_tp,) = typing.get_args(tp)
        return tuple(_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {value!r} is not valid; expected {_describe(tp)}")
        k_tp, v_tp = typing.get_args(tp)
        return types.MappingProxyType(
            {_convert(k, k_tp, path): _convert(v, v_tp, f"{path}.{k}") for k, v in value.items()})
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported settings type {tp!r} at {path}")
    raise ConfigError(f"{path}: {value!r} is not valid; expected {_describe(tp)}")


def _check_limits(value: Any, field: dataclasses.Field, path: str) -> None:
    meta = field.metadata
    choices = meta.get("choices")
    if choices is not None and value is not None:
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item not in choices:
                allowed = ", ".join(repr(c) for c in choices)
                raise ConfigError(f"{path}: {item!r} is not allowed; choose one of {allowed}")
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None and value < lo or hi is not None and value > hi:
            rng = f"between {lo} and {hi}" if lo is not None and hi is not None else (
                f"at least {lo}" if lo is not None else f"at most {hi}")
            raise ConfigError(f"{path}: {value!r} is out of range; must be {rng}")


def build(cls: type, table: Any, path: str) -> Any:
    """Build settings class ``cls`` from a TOML table, checking unknown keys, types and limits."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: expected a table [{path}], got {table!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        where = f"[{path}]" if path else "the top level"
        raise ConfigError(f"{_join(path, unknown[0])}: unknown key; the keys of {where} are: {known}")
    values = {}
    for name, raw in table.items():
        tp = hints[name]
        key = _join(path, name)
        if dataclasses.is_dataclass(tp):
            values[name] = build(tp, raw, key)
            continue
        value = _convert(raw, tp, key)
        _check_limits(value, fields[name], key)
        values[name] = value
    try:
        obj = cls(**values)
    except ConfigError:
        raise
    except ValueError as e:  # cross-field checks in __post_init__
        raise ConfigError(f"{path or 'config'}: {e}") from e
    return obj


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name

