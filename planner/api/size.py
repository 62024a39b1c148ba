"""``planner size``: the optimal plan, baselines and savings; ``--engine auto|LIST`` across engines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from planner.api.inputs import planning_catalog, resolve_workload
from planner.domain import (
    Catalog,
    EngineSpec,
    Workload,
)
from planner.errors import InfeasibleError, InputError
from planner.io.catalog import select_engine

if TYPE_CHECKING:
    from planner.io.workload import WorkloadSpec
    from planner.optimize.sizing import SizeResult


def size(workload: Workload, catalog: Catalog, *, solver: str = "highs", time_limit_s: float | None = None) -> SizeResult:
    """Optimal disaggregated plan, baselines and savings (see :mod:`planner.optimize.sizing`)."""
    from planner.optimize.sizing import size as _size

    if solver not in ("highs", "cbc"):
        raise InputError(f"--solver {solver}: use highs or cbc")
    if time_limit_s is not None and not time_limit_s > 0:
        raise InputError("--time-limit-s must be positive")
    return _size(workload, catalog, solver=solver, time_limit_s=time_limit_s)  # type: ignore[arg-type]


REFERENCE_ENGINES = ("pytorch", "splitwise")
"""Reference profiles, not engines one deploys: ``--engine auto`` leaves them out."""


def several_engines(raw: str | None) -> bool:
    """Whether ``--engine`` names several engines: ``auto`` or a comma-separated list."""
    return raw is not None and (raw.strip().lower() == "auto" or "," in raw)


def engine_list(catalog: Catalog, raw: str) -> list[str]:
    """The engines ``--engine`` names: ``auto`` (every engine of the catalog but
    :data:`REFERENCE_ENGINES`), a comma-separated list of ``NAME[@VERSION]``, or one of them."""
    text = raw.strip()
    if text.lower() == "auto":
        names = [e for e in sorted(catalog.engines) if e not in REFERENCE_ENGINES]
        if not names:
            raise InputError("--engine auto: the catalog has no engine besides the reference profiles")
        return names
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError(f"--engine {raw!r}: name at least one engine")
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSizing:
    """:func:`size` under one engine: the plan, or the infeasibility it ended in."""

    engine: EngineSpec
    catalog: Catalog  # with this engine selected
    workload: Workload
    result: SizeResult | None
    infeasible: InfeasibleError | None = None

    @property
    def feasible(self) -> bool:
        return self.result is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineComparison:
    """:func:`size_engines`: every engine's sizing, in the order asked, and the best feasible one."""

    runs: tuple[EngineSizing, ...]
    best: EngineSizing


def size_engines(
    spec: WorkloadSpec,
    engines: str | Sequence[str],
    *,
    written_in: Path | None = None,
    catalog_dirs: Sequence[Path] = (),
    origin: str = "workload",
    solver: str = "highs",
    time_limit_s: float | None = None,
) -> EngineComparison:
    """Size the workload under each of ``engines`` (``NAME[@VERSION]`` each, or ``--engine``'s text:
    see :func:`engine_list`; an engine named twice is sized once) and
    pick the best plan by the workload's objective (cost: USD/hour; gpus, power: that, then cost;
    a tie goes to the engine named first). Raises InfeasibleError when no engine has a plan."""
    base = planning_catalog(spec, written_in, catalog_dirs)
    runs: list[EngineSizing] = []
    seen: set[str] = set()
    for raw in engine_list(base, engines) if isinstance(engines, str) else engines:
        cat = select_engine(base, raw, "--engine")
        if cat.engine.id in seen:
            continue
        seen.add(cat.engine.id)
        workload = resolve_workload(spec, cat, origin)
        try:
            result: SizeResult | None = size(workload, cat, solver=solver, time_limit_s=time_limit_s)
            failed = None
        except InfeasibleError as exc:
            result, failed = None, exc
        runs.append(EngineSizing(engine=cat.engine, catalog=cat, workload=workload, result=result, infeasible=failed))
    feasible = [r for r in runs if r.result is not None]
    if not feasible:
        first = runs[0].infeasible
        assert first is not None
        raise InfeasibleError(
            f"no engine has a plan ({', '.join(r.engine.label for r in runs)}); {runs[0].engine.label}: {first.message}",
            hint=first.hint,
            diagnosis={
                **first.diagnosis,
                "engines": [{"engine": r.engine.label, "message": r.infeasible.message if r.infeasible else ""} for r in runs],
            },
        )

    def key(r: EngineSizing) -> tuple[float, float]:
        assert r.result is not None
        ev = r.result.plan.evaluation
        if r.workload.objective == "gpus":
            return (ev.num_gpus, ev.usd_per_hour)
        if r.workload.objective == "power":
            return (ev.power_w, ev.usd_per_hour)
        return (ev.usd_per_hour, ev.num_gpus)

    return EngineComparison(runs=tuple(runs), best=min(feasible, key=key))
