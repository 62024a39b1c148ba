"""Write an ``efficiency.yaml`` catalog overlay (fitted factors), validated before it is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.domain import Efficiency
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
    write_text_atomic(path, HEADER + dumps(doc), inputs=inputs, replaces=merge_into)  # --merge-into X --write X updates X


def validate_efficiency_doc(doc: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` unless ``doc`` is a valid efficiency file."""
    try:
        EfficiencyFile.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"not a valid efficiency file: {where}: {' '.join(str(err['msg']).split())}") from None


_FACTORS = tuple(f.name for f in fields(Efficiency) if f.type == "float")  # every factor, in declaration order


def write_engine_overheads(
    path: Path,
    engine: str,
    efficiency: Mapping[str, Any],
    overheads: Mapping[str, float],
    fitted_on: str,
    *,
    source: str,
    as_of: str,
    inputs: Sequence[Path] = (),
    uncertainty: Mapping[str, Any] | None = None,
) -> None:
    """Write ``engine``'s factor sets (``efficiency``: GPU id → :class:`planner.domain.Efficiency`) as
    an overlay of that engine, every fitted set with the engine ``overheads`` in place."""
    entries: dict[str, Any] = {}
    for gpu, eff in sorted(efficiency.items()):
        if eff.transferred_from:
            note = f"no measurements of {gpu}: {eff.transferred_from}'s set"
            entries[gpu] = {"transferred_from": eff.transferred_from, "note": note}
            continue

        def one(e: Any) -> dict[str, Any]:
            out: dict[str, Any] = {name: float(f"{getattr(e, name):.6g}") for name in _FACTORS}
            if e.overlap_q is not None:
                out["overlap_q"] = float(f"{e.overlap_q:.6g}")
            if e.allreduce_curve:
                out["allreduce_curve"] = {tp: [[b, t] for b, t in points] for tp, points in e.allreduce_curve}
            out.update({k: float(f"{v:.6g}") for k, v in overheads.items()})
            kernels = e.fitted_on.split("; overheads:")[0]
            out.update(fitted_on=f"{kernels}; overheads: {fitted_on}", source=source, as_of=as_of)
            return out

        entry = one(eff)
        for name, block in (("fp8", eff.fp8), ("fp4", eff.fp4)):
            if block is not None:
                entry[name] = one(block)
        entries[gpu] = entry
    doc: dict[str, Any] = {"schema_version": 1, "engine": engine, "efficiency": entries}
    if uncertainty is not None:  # the measured spread of the fit (planner study robust draws from it)
        doc["uncertainty"] = dict(uncertainty)
    validate_efficiency_doc(doc)
    write_text_atomic(path, HEADER + dumps(doc), inputs=inputs)


def write_moe_serving(path: Path, entry: Mapping[str, Any]) -> None:
    """Put ``entry`` (:class:`planner.io.schemas.MoeServingEntry`'s fields) in the ``moe_serving`` block of the engine
    efficiency file ``path``, replacing the block it has; the rest of the file is kept as it is, byte for byte."""
    from planner.io.yamlio import read_text

    text = read_text(path)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("moe_serving:")), None)
    if start is not None:
        end = next((j for j in range(start + 1, len(lines)) if lines[j][:1] not in (" ", "-", "\n", "")), len(lines))
        lines = lines[:start] + lines[end:]
    kept = "".join(lines)
    if kept and not kept.endswith("\n"):
        kept += "\n"
    new = kept + dumps({"moe_serving": dict(entry)})
    doc = parse_text_doc(new, path)
    validate_efficiency_doc(doc)
    write_text_atomic(path, new, replaces=path)


def parse_text_doc(text: str, path: Path) -> Mapping[str, Any]:
    import yaml

    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a mapping")
    return doc
