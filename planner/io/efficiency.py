"""Write an ``efficiency.yaml`` catalog overlay (fitted factors), validated before it is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from planner.errors import InputError
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
    """Write ``entries`` (GPU id → factors, an fp8 set nested under ``fp8``). With ``merge_into``,
    the entries and fp8 sets of that file that were not re-fitted are kept. A GPU's fp8 set needs
    the GPU's own (bf16) factors beside it, fitted now or kept from ``merge_into``."""
    merged: dict[str, Any] = {}
    if merge_into is not None and merge_into.exists():
        old = parse_file(merge_into, EfficiencyFile)
        merged.update({k: v.model_dump(exclude_none=True) for k, v in old.efficiency.items()})
    for gpu, entry in entries.items():
        new = dict(entry)
        kept = merged.get(gpu, {})
        if set(new) == {"fp8"}:  # only the fp8 set was fitted: keep the GPU's other factors
            if not kept or "transferred_from" in kept:
                raise InputError(
                    f"--write: {gpu} has fp8 factors but no bf16 ones: fit bf16 measurements of {gpu} too, "
                    "or --merge-into an efficiency.yaml that has them (e.g. the built-in catalogs/efficiency.yaml)"
                )
            new = {**kept, "fp8": new["fp8"]}
        elif "fp8" not in new and "fp8" in kept:  # bf16 re-fitted: keep the fp8 set
            new["fp8"] = kept["fp8"]
        merged[gpu] = new
    doc = {"schema_version": 1, "efficiency": dict(sorted(merged.items()))}
    EfficiencyFile.model_validate(doc)
    write_text_atomic(path, HEADER + dumps(doc), inputs=inputs)


def validate_efficiency_doc(doc: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` unless ``doc`` is a valid efficiency file."""
    try:
        EfficiencyFile.model_validate(doc)
    except ValueError as exc:
        raise InputError(f"not a valid efficiency file: {exc}") from None
