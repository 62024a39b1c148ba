"""The versioned JSON envelope every command emits (DESIGN.md §2).

Keys sorted, numbers unrounded, no timestamps: the same input gives byte-identical output.
Non-finite numbers (an unbounded queue's delay) become ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from planner import __version__
from planner.io.envelope import SCHEMA_VERSION  # the one definition: the reader checks it

__all__ = ["SCHEMA_VERSION", "clean", "envelope", "to_json"]


def clean(value: Any) -> Any:
    """JSON-safe copy: tuples to lists, non-finite floats to None, keys to str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def envelope(
    command: str, status: str, inputs: Mapping[str, Any], data: Mapping[str, Any], warnings: Sequence[str] = ()
) -> dict[str, Any]:
    doc: dict[str, Any] = clean(
        {
            "schema_version": SCHEMA_VERSION,
            "planner_version": __version__,
            "command": command,
            "status": status,
            "inputs": dict(inputs),
            "data": dict(data),
            "warnings": list(warnings),
        }
    )
    return doc


def to_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, allow_nan=False) + "\n"
