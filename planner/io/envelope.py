"""The one reader of saved planner results: the versioned JSON envelope every command emits with ``--format json``
(``schema_version``, ``command``, ``status``, ``inputs``, ``data``, ``warnings``; docs/design.md §2).

:func:`read_envelope` reads a saved result (``planner report`` reads ``planner size`` and ``planner sweep`` results);
:func:`envelope_command` recognizes an envelope already parsed (a ``planner size`` plan is also a proposal, in YAML
or JSON: :mod:`planner.io.proposal` and ``planner check`` ask it)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from planner.domain import InputSource
from planner.errors import InputError
from planner.io.sources import read_source

__all__ = ["SCHEMA_VERSION", "envelope_command", "read_envelope"]

SCHEMA_VERSION = 1


def envelope_command(doc: Any) -> str | None:
    """The ``command`` of a planner envelope (a mapping with ``schema_version`` and a ``command``), None for any
    other document."""
    if isinstance(doc, dict) and "schema_version" in doc and isinstance(doc.get("command"), str):
        return str(doc["command"])
    return None


def read_envelope(
    path: Path, commands: Collection[str] | None = None, *, hint: str | None = None
) -> tuple[dict[str, Any], InputSource]:
    """A saved planner result (JSON) and the source it was read from (once per run, :func:`read_source`).

    One ``error:`` naming the file unless it is JSON, a mapping with ``schema_version`` 1, a ``command`` (one of
    ``commands`` where given) and ``data``; ``hint`` replaces the default hint of that error."""
    source = read_source(path)
    try:
        doc: Any = json.loads(source.text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})", hint="save a result with --format json") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be a planner result") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InputError(f"{path}: not a planner result ({str(exc).split(';')[0]})") from None
    command = envelope_command(doc)
    if (
        command is None
        or doc.get("schema_version") != SCHEMA_VERSION
        or (commands is not None and command not in commands)
        or "data" not in doc
    ):
        if commands:
            what = " or ".join(f"planner {c}" for c in commands)
            message = f"{path}: not a {what} result (schema_version {SCHEMA_VERSION})"
        else:
            message = f"{path}: not a planner result (a JSON envelope with schema_version {SCHEMA_VERSION}, command and data)"
        raise InputError(message, hint=hint or "save a result with --format json")
    return doc, source
