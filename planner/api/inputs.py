"""Catalogs, ids and workload documents: what every command resolves its inputs with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from planner.domain import (
    Catalog,
    GpuSpec,
    ModelSpec,
    Workload,
)
from planner.errors import InputError
from planner.io.catalog import IdIndex, load_catalog, select_engine, with_provider
from planner.perf.roofline import Hardware
from planner.perf.transfer import EXPERT_LINK as EXPERT_LINK  # re-exported
from planner.perf.transfer import replica_hardware

if TYPE_CHECKING:
    from planner.io.workload import WorkloadSpec


def resolve_gpu(catalog: Catalog, raw_id: str, where: str = "--gpu") -> GpuSpec:
    return catalog.gpus[IdIndex("GPU", catalog.gpus).resolve(raw_id, where)]


def resolve_model(catalog: Catalog, raw_id: str, where: str = "--model") -> ModelSpec:
    """A catalog model by its id, Hugging Face id or alias (any case), e.g. ``meta-llama/Llama-3.1-70B``."""
    return catalog.models[IdIndex.models(catalog.models).resolve(raw_id, where)]


def hardware(catalog: Catalog, gpu: GpuSpec, tp: int, attention_dp: int = 1, moe_ep: int = 1) -> Hardware:
    """The step model's view of a replica (:func:`planner.perf.transfer.replica_hardware`)."""
    return replica_hardware(catalog, gpu, tp, attention_dp, moe_ep)


def engine_catalog(catalog_dirs: Sequence[Path] = (), engine: str | None = None, where: str = "--engine") -> Catalog:
    """The built-in catalog and ``catalog_dirs`` with ``engine`` (``NAME`` or ``NAME@VERSION``;
    None: the default engine) selected."""
    return select_engine(load_catalog(catalog_dirs), engine, where)


def planning_catalog(spec: WorkloadSpec, written_in: Path | None, catalog_dirs: Sequence[Path]) -> Catalog:
    """The built-in catalog, ``catalog_dirs``, then the workload's ``calibration`` overlay (relative
    to ``written_in``; a workload given by flags has none); the default engine selected."""
    from planner.io.workload import calibration_dir

    extra = None if written_in is None else calibration_dir(spec, written_in.parent, str(written_in))
    catalog = load_catalog([*catalog_dirs, *([extra] if extra is not None else [])])
    if spec.pricing.provider is None:
        return catalog
    return with_provider(catalog, spec.pricing.provider, f"{written_in or 'workload'}: pricing.provider")


def workload_catalog(
    spec: WorkloadSpec, written_in: Path, catalog_dirs: Sequence[Path] = (), engine: str | None = None, where: str = "--engine"
) -> Catalog:
    """The catalog a workload is planned with: the built-in one, ``catalog_dirs``, then the
    overlay its ``calibration`` entry names (relative to ``written_in``, the file it is written in),
    with the serving engine selected: ``engine`` (``--engine``; ``where`` names it in errors), else
    the workload's ``engine:``, else the catalog's default."""
    base = planning_catalog(spec, written_in, catalog_dirs)
    if engine is not None:
        return select_engine(base, engine, where)
    return select_engine(base, spec.engine, f"{written_in}: engine")


def proposal_catalog(path: Path, catalog_dirs: Sequence[Path] = (), engine: str | None = None) -> Catalog:
    """:func:`workload_catalog` for the workload of a proposal (or a ``planner size`` plan). The
    engine: ``engine`` (``--engine``), else the proposal's ``engine:`` (a plan's ``inputs.engine``,
    the engine it was sized for), else its workload's ``engine:``, else the catalog's default."""
    from planner.io.proposal import read_proposal_with_origin

    spec, workload_spec, written_in = read_proposal_with_origin(path)
    base = planning_catalog(workload_spec, written_in, catalog_dirs)
    if engine is not None:
        return select_engine(base, engine, "--engine")
    if spec.engine is not None:
        return select_engine(base, spec.engine, f"{path}: engine")
    return select_engine(base, workload_spec.engine, f"{written_in}: engine")


def load_workload_spec(path: Path) -> WorkloadSpec:
    """Read and validate a workload YAML file (ids are resolved by :func:`resolve_workload`)."""
    from planner.io.workload import read_workload_spec

    return read_workload_spec(path)


def resolve_workload(spec: WorkloadSpec, catalog: Catalog, origin: str = "workload") -> Workload:
    from planner.io.workload import to_domain

    return to_domain(spec, catalog, origin)


def workload_spec_from_flags(
    *,
    model: str,
    rate_rps: float,
    isl: float,
    osl: float,
    ttft_p99_ms: float,
    tpot_p99_ms: float,
    precision: str = "bf16",
    prefill_gpus: Sequence[str] | None = None,
    decode_gpus: Sequence[str] | None = None,
    links: Sequence[str] | None = None,
    interarrival_cv2: float = 1.0,
) -> WorkloadSpec:
    """One class from flags; lengths are fixed (every request ISL in, OSL out)."""
    from planner.io.workload import parse_workload

    def fixed(tokens: float) -> dict[str, float]:
        return {"mean": tokens, "p50": tokens, "p90": tokens, "p99": tokens}

    doc: dict[str, object] = {
        "model": model,
        "precision": precision,
        "classes": [
            {
                "name": "default",
                "rate_rps": rate_rps,
                "interarrival_cv2": interarrival_cv2,
                "input_tokens": fixed(isl),
                "output_tokens": fixed(osl),
                "slo": {"ttft_p99_ms": ttft_p99_ms, "tpot_p99_ms": tpot_p99_ms},
            }
        ],
    }
    hw = {k: list(v) for k, v in (("prefill_gpus", prefill_gpus), ("decode_gpus", decode_gpus), ("links", links)) if v}
    if hw:
        doc["hardware"] = hw
    return parse_workload(doc, "flags")


def check_context(model: ModelSpec, tokens: int, flag: str) -> None:
    if tokens > model.max_context_tokens:
        raise InputError(f"{flag} {tokens}: longer than {model.id}'s context window of {model.max_context_tokens} tokens")
