"""Write an ``efficiency.yaml`` catalog overlay (fitted factors), validated before it is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from planner.io.catalog import parse_file
from planner.io.output import write_text_atomic
from planner.io.schemas import EfficiencyFile
from planner.io.yamlio import dumps

HEADER = """\
# Efficiency factors of the performance core, one entry per GPU. Fitted entries come from
# `planner calibrate fit` (fitted_on names the measurements); an entry with transferred_from borrows
# another GPU's factors because no measurement of this GPU exists, and its note says why.
"""


def write_efficiency(
    path: Path, entries: Mapping[str, Mapping[str, Any]], *, merge_into: Path | None = None, inputs: Sequence[Path] = ()
) -> None:
    merged: dict[str, Any] = {}
    if merge_into is not None and merge_into.exists():
        old = parse_file(merge_into, EfficiencyFile)
        merged.update({k: v.model_dump(exclude_none=True) for k, v in old.efficiency.items()})
    merged.update({k: dict(v) for k, v in entries.items()})
    doc = {"schema_version": 1, "efficiency": dict(sorted(merged.items()))}
    EfficiencyFile.model_validate(doc)
    write_text_atomic(path, HEADER + dumps(doc), inputs=inputs)
