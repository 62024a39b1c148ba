"""Read a ``--grid`` CSV of fixed-concurrency points for ``planner estimate serve``: one row per
point, columns named as the command's options (``isl``, ``osl``, ``concurrency``, ``model``, ``gpu``,
``tp``, ``engine``, ``precision``, ``mode``, ``prefill_gpu``, ...); a blank or absent column takes the
value given on the command line."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from planner.domain import PRECISIONS
from planner.errors import InputError
from planner.io.yamlio import read_text

INT_COLUMNS = ("isl", "osl", "concurrency", "tp", "replicas", "prefill_tp", "prefill_workers", "decode_tp", "decode_workers")
TEXT_COLUMNS = ("model", "gpu", "engine", "precision", "mode", "prefill_gpu", "decode_gpu", "link", "speculative")
MODES = {"aggregated": "aggregated", "agg": "aggregated", "disaggregated": "disaggregated", "disagg": "disaggregated"}


def read_grid(path: Path, defaults: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """See :func:`_read_grid`; a malformed CSV (a field over the ``csv`` module's 128 KiB limit) is an InputError."""
    try:
        return _read_grid(path, defaults)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None


def _read_grid(path: Path, defaults: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(``file:line``, the point's fields) for every row; raises :class:`InputError` naming the line."""
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if not columns:
        known = ", ".join(INT_COLUMNS + TEXT_COLUMNS)
        raise InputError(f"{path}: empty grid file", hint=f"a header row of columns among {known}")
    unknown = [c for c in columns if c not in INT_COLUMNS + TEXT_COLUMNS]
    if unknown:
        raise InputError(
            f"{path}:1: unknown column(s) {', '.join(repr(c) for c in unknown)}",
            hint=f"known columns: {', '.join(INT_COLUMNS + TEXT_COLUMNS)}",
        )
    reader.fieldnames = columns
    out = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row:
            raise InputError(f"{where}: more fields than the header has columns")
        point = dict(defaults)
        for column, raw in row.items():
            value = (raw or "").strip()
            if not value:
                continue
            if column in INT_COLUMNS:
                try:
                    number = float(value)
                except ValueError:
                    raise InputError(f"{where}: column {column!r}: {value!r} is not a number") from None
                if number != int(number) or not 1 <= number < 2**31:
                    raise InputError(f"{where}: column {column!r}: {value!r} is not a whole number >= 1")
                point[column] = int(number)
            elif column == "mode":
                if value.lower() not in MODES:
                    raise InputError(f"{where}: column 'mode': {value!r} is not aggregated or disaggregated")
                point[column] = MODES[value.lower()]
            elif column == "precision":
                if value.lower() not in PRECISIONS:
                    raise InputError(f"{where}: column 'precision': {value!r} is not {', '.join(PRECISIONS)}")
                point[column] = value.lower()
            else:
                point[column] = value
        for required in ("isl", "osl", "concurrency", "model"):
            if point.get(required) is None:
                raise InputError(f"{where}: no {required} (neither in the row nor on the command line)")
        out.append((where, point))
    if not out:
        raise InputError(f"{path}: the grid has a header but no rows")
    return out
