"""Render settings fields as commented TOML lines: used to say exactly what example.toml is missing."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any


def toml_value(value: Any) -> str:
    """A Python default as a TOML value (strings as basic strings, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
                                for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def limits(field: dataclasses.Field) -> str:
    meta = field.metadata
    if meta.get("choices"):
        return "one of " + ", ".join(toml_value(c) for c in meta["choices"])
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f"{lo} .. {hi}"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


def render_field(field: dataclasses.Field) -> str:
    """'# doc (allowed)\\nname = default' for one settings field."""
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    allowed = limits(field)
    doc = field.metadata.get("doc", "")
    comment = f"# {doc}" + (f" ({allowed})" if allowed else "")
    return f"{comment}\n{field.name} = {toml_value(default)}"
