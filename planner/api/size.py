"""``planner size``: the optimal plan, baselines and savings; ``--engine auto|LIST`` across engines."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.api.inputs import (
    engine_catalog,
    load_workload_spec,
    planning_catalog,
    resolve_workload,
    workload_catalog,
    workload_spec_from_flags,
)
from planner.domain import (
    Catalog,
    EngineSpec,
    InputSource,
    Precision,
    SolverName,
    Workload,
)
from planner.errors import InfeasibleError, InputError
from planner.io.catalog import IdIndex, select_engine
from planner.io.sources import read_source, reading_once

if TYPE_CHECKING:
    from planner.io.workload import WorkloadSpec
    from planner.optimize.schedule import Schedule
    from planner.optimize.sizing import NoReuse, SizeResult, Solved
    from planner.sim import Simulation

__all__ = [
    "REFERENCE_ENGINES",
    "VERIFY_REQUESTS",
    "EngineComparison",
    "EngineSizing",
    "SizeInfeasibleError",
    "SizeOptions",
    "SizeRun",
    "engine_list",
    "run_size",
    "several_engines",
    "size",
    "size_engines",
    "size_no_reuse",
    "size_schedule",
    "size_sweeps",
    "without_prefix_cache",
]


def size(workload: Workload, catalog: Catalog, *, solver: str = "highs", time_limit_s: float | None = None) -> SizeResult:
    """Optimal disaggregated plan, baselines and savings (see :mod:`planner.optimize.sizing`). When a class has a
    prefix cache, the result's ``no_reuse`` holds the plan of the same workload without any (:func:`size_no_reuse`)."""
    import time

    from planner.optimize.sizing import size as _size

    if solver not in ("highs", "cbc"):
        raise InputError(f"--solver {solver}: use highs or cbc")
    if time_limit_s is not None and not time_limit_s > 0:
        raise InputError("--time-limit-s must be positive")
    start = time.monotonic()
    result = _size(workload, catalog, solver=solver, time_limit_s=time_limit_s)  # type: ignore[arg-type]
    if not any(c.prefix_cache is not None for c in workload.classes):
        return result
    from planner.perf.prefix_cache import prefix_cache_figures

    left = None if time_limit_s is None else time_limit_s - (time.monotonic() - start)
    return replace(
        result,
        no_reuse=size_no_reuse(workload, catalog, solver=solver, time_limit_s=left),
        prefix_cache=prefix_cache_figures(workload, result.plan.evaluation, catalog),
    )


def without_prefix_cache(workload: Workload) -> Workload:
    """The workload with every class's ``prefix_cache`` removed."""
    return replace(workload, classes=tuple(replace(c, prefix_cache=None) for c in workload.classes))


def size_no_reuse(workload: Workload, catalog: Catalog, *, solver: str = "highs", time_limit_s: float | None = None) -> NoReuse:
    """The plan of ``workload`` with no prefix reuse (no baselines: only the plan is compared), or why there is
    none: no plan meets the SLOs without the cache, or the time limit ran out."""
    from planner.errors import SolverError
    from planner.optimize.sizing import NoReuse
    from planner.optimize.sizing import size as _size

    note = "the same workload with every class's prefix_cache removed, sized by the same method (no baselines)"
    if time_limit_s is not None and time_limit_s <= 0:
        return NoReuse(solved=None, note="without reuse: not solved, the time limit (--time-limit-s) ran out before it")
    try:
        plain = _size(without_prefix_cache(workload), catalog, solver=solver, time_limit_s=time_limit_s, baselines=False)  # type: ignore[arg-type]
    except InfeasibleError as exc:
        return NoReuse(solved=None, note=f"without reuse no plan meets the SLOs: {exc.message}")
    except SolverError as exc:
        if time_limit_s is None:
            raise
        return NoReuse(solved=None, note=f"without reuse: not solved ({exc.message})")
    return NoReuse(solved=plain.plan, note=note)


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
    skipped: tuple[str, ...] = ()
    """``--engine auto``: why an engine was not sized (it does not run on a GPU the workload names)."""


def _refusal(catalog: Catalog, spec: WorkloadSpec) -> str | None:
    """Why the catalog's engine cannot serve the workload: it names a GPU (hardware.prefill_gpus / decode_gpus) the
    engine does not run on (engines.yaml ``unsupported_gpus``: TensorRT-LLM on AMD GPUs); None when it can."""
    index = IdIndex("GPU", catalog.gpus)
    named = [*(spec.hardware.prefill_gpus or ()), *(spec.hardware.decode_gpus or ())]
    refused = sorted({gpu for g in named if (gpu := index.resolve(g, "hardware")) in catalog.engine.unsupported_gpus})
    if not refused:
        return None
    return (
        f"engine {catalog.engine.label} skipped: it does not run on {', '.join(refused)} "
        f"({catalog.engine.unsupported_gpus[refused[0]]})"
    )


def size_engines(
    spec: WorkloadSpec,
    engines: str | Sequence[str],
    *,
    written_in: Path | None = None,
    catalog_dirs: Sequence[Path] = (),
    origin: str = "workload",
    solver: str = "highs",
    time_limit_s: float | None = None,
    single_node: bool = False,
) -> EngineComparison:
    """Size the workload under each of ``engines`` (``NAME[@VERSION]`` each, or ``--engine``'s text:
    see :func:`engine_list`; an engine named twice is sized once) and
    pick the best plan by the workload's objective (cost: USD/hour; gpus, power: that, then cost;
    a tie goes to the engine named first). Raises InfeasibleError when no engine has a plan."""
    base = planning_catalog(spec, written_in, catalog_dirs)
    runs: list[EngineSizing] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for raw in engine_list(base, engines) if isinstance(engines, str) else engines:
        cat = select_engine(base, raw, "--engine")
        if cat.engine.id in seen:
            continue
        seen.add(cat.engine.id)
        if isinstance(engines, str) and engines.strip().lower() == "auto" and (why := _refusal(cat, spec)):
            skipped.append(why)  # auto: an engine that does not run on a GPU the workload names is not a candidate
            continue
        workload = _single_node(resolve_workload(spec, cat, origin), single_node)
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

    return EngineComparison(runs=tuple(runs), best=min(feasible, key=key), skipped=tuple(skipped))


# ------------------------------------------------------------------------- the command's one door

VERIFY_REQUESTS = 10_000
"""Requests ``planner size --verify`` simulates the chosen plan with."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeOptions:
    """Everything ``planner size`` takes but the output format and destination: a workload file, or
    a one-class workload from the fields ``model`` to ``links`` (lengths fixed at ``isl`` / ``osl``)."""

    workload_file: Path | None = None
    model: str | None = None
    rate_rps: float | None = None  # peak arrival rate, requests/s
    isl: float | None = None  # input tokens per request
    osl: float | None = None  # output tokens per request
    ttft_p99_ms: float | None = None
    tpot_p99_ms: float | None = None
    interarrival_cv2: float = 1.0
    precision: Precision = "bf16"
    prefill_gpus: tuple[str, ...] | None = None  # allowed GPUs (None: every priced GPU)
    decode_gpus: tuple[str, ...] | None = None
    links: tuple[str, ...] | None = None
    engine: str | None = None  # NAME[@VERSION], or auto or a comma list: size under each, keep the best
    catalog_dirs: tuple[Path, ...] = ()
    solver: SolverName = "highs"
    time_limit_s: float | None = None  # per solve
    verify: bool = False  # simulate the chosen plan (VERIFY_REQUESTS requests)
    schedule: bool = False  # plan each hour of the day (rate_profile) and purchases by month (growth)
    scale_up_lead_min: float | None = None  # with schedule: minutes a scaled-up replica is paid before its hour
    html_file: Path | None = None  # where the HTML report goes (written by the caller; see size_sweeps)
    single_node: bool = False  # --emit: plan only replicas one node holds (it writes single-node launches only)


_FLAG_FIELDS = (
    ("--model", "model"),
    ("--rate-rps", "rate_rps"),
    ("--isl", "isl"),
    ("--osl", "osl"),
    ("--ttft-p99-ms", "ttft_p99_ms"),
    ("--tpot-p99-ms", "tpot_p99_ms"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeRun:
    """:func:`run_size`: the plan and what its report needs (the envelope's ``inputs``, warnings)."""

    options: SizeOptions
    spec: WorkloadSpec  # the workload document (from the file, or built from the fields)
    workload: Workload  # resolved under ``catalog``
    catalog: Catalog  # with the engine of the plan selected
    result: SizeResult
    comparison: EngineComparison | None  # several engines: each one's sizing
    simulation: Simulation | None  # ``verify``: the plan simulated
    inputs: dict[str, Any]
    warnings: tuple[str, ...]
    sources: tuple[InputSource, ...]  # the workload file, when one was read
    schedule: Schedule | None = None  # ``schedule``: the day's hours and the purchases by month

    @property
    def input_paths(self) -> tuple[Path, ...]:
        """The files read, which no output may replace."""
        return tuple(Path(s.path) for s in self.sources)


class SizeInfeasibleError(InfeasibleError):
    """:func:`run_size` found no plan: the :class:`InfeasibleError` with the envelope's ``inputs`` as resolved."""

    def __init__(self, exc: InfeasibleError, inputs: dict[str, Any]) -> None:
        super().__init__(exc.message, hint=exc.hint, diagnosis=exc.diagnosis)
        self.inputs = inputs


def _single_node(workload: Workload, single_node: bool) -> Workload:
    """The workload restricted to replicas one node holds (``size --emit``), or as it is."""
    if not single_node:
        return workload
    return replace(workload, constraints=replace(workload.constraints, single_node_replicas=True))


def _spans_nodes(workload: Workload, catalog: Catalog) -> bool:
    """Whether any allowed GPU has a multi-node layout for the workload's model (one that --emit left out)."""
    from planner.optimize.candidates import pp_layouts, wide_layouts

    free = replace(workload, constraints=replace(workload.constraints, single_node_replicas=False))
    gpus = sorted(set(workload.prefill_gpus) | set(workload.decode_gpus))
    return any(wide_layouts(catalog, free, g) or pp_layouts(catalog, free, g) for g in gpus)


def run_size(options: SizeOptions) -> SizeRun:
    """``planner size`` as a library call: read the workload (file or fields), resolve its catalog
    and engine(s), size it (under each engine for ``auto`` or a list, keeping the best), simulate the
    plan with ``verify``. Raises :class:`SizeInfeasibleError` when there is no plan."""
    with reading_once():
        return _run_size(options)


def _run_size(o: SizeOptions) -> SizeRun:
    from planner import api  # the package's names: what callers (and tests) may replace
    from planner.report.engine import engine_doc, transfer_warnings
    from planner.report.speculative import workload_speculative

    inputs: dict[str, Any] = {}
    _check_schedule_options(o)
    several = several_engines(o.engine)
    catalog: Catalog | None = None
    sources: tuple[InputSource, ...] = ()
    if o.workload_file is not None:
        given = [flag for flag, name in _FLAG_FIELDS if getattr(o, name) is not None]
        if given or any(v is not None for v in (o.prefill_gpus, o.decode_gpus, o.links)):
            raise InputError(
                f"give a workload file or flags, not both ({', '.join(given) or 'hardware flags'} with {o.workload_file})"
            )
        spec = load_workload_spec(o.workload_file)
        if not several:
            catalog = workload_catalog(spec, o.workload_file, o.catalog_dirs, o.engine)
        source = read_source(o.workload_file)  # the read load_workload_spec made
        sources = (source,)
        inputs["workload_file"] = str(o.workload_file)
        inputs["workload_sha256"] = source.sha256
        origin = str(o.workload_file)
    else:
        missing = [flag for flag, name in _FLAG_FIELDS if getattr(o, name) is None]
        if missing:
            raise InputError(
                f"size: give WORKLOAD.yaml, or all of --model --rate-rps --isl --osl --ttft-p99-ms --tpot-p99-ms "
                f"(missing {', '.join(missing)})"
            )
        if not several:
            catalog = engine_catalog(o.catalog_dirs, o.engine)
        spec = workload_spec_from_flags(
            model=o.model or "",
            rate_rps=o.rate_rps or 0.0,
            isl=o.isl or 0.0,
            osl=o.osl or 0.0,
            ttft_p99_ms=o.ttft_p99_ms or 0.0,
            tpot_p99_ms=o.tpot_p99_ms or 0.0,
            precision=o.precision,
            prefill_gpus=o.prefill_gpus,
            decode_gpus=o.decode_gpus,
            links=o.links,
            interarrival_cv2=o.interarrival_cv2,
        )
        origin = "flags"
    inputs["workload"] = spec.model_dump(mode="json", exclude_none=True)
    inputs["solver"] = o.solver
    if o.schedule:
        _check_schedule_spec(spec, origin)
    comparison = None
    started = time.monotonic()
    try:
        if catalog is None:  # engine auto or a list: size under each, keep the best
            comparison = api.size_engines(
                spec,
                o.engine or "",
                written_in=o.workload_file,
                catalog_dirs=o.catalog_dirs,
                origin=origin,
                solver=o.solver,
                time_limit_s=o.time_limit_s,
                single_node=o.single_node,
            )
            catalog, workload, found = comparison.best.catalog, comparison.best.workload, comparison.best.result
            assert found is not None
            result = found
            inputs["engines"] = [r.engine.label for r in comparison.runs]
        else:
            inputs["engine"] = engine_doc(catalog.engine)
            workload = _single_node(resolve_workload(spec, catalog, origin), o.single_node)
            result = api.size(workload, catalog, solver=o.solver, time_limit_s=o.time_limit_s)
    except InfeasibleError as exc:
        tried = exc.diagnosis.get("engines") if several else None
        if isinstance(tried, list):
            inputs["engines"] = [e["engine"] for e in tried]
        raise SizeInfeasibleError(exc, inputs) from exc
    inputs["engine"] = engine_doc(catalog.engine)
    spec_inputs, spec_warnings = workload_speculative(workload)
    inputs.update(spec_inputs)
    warnings = [*spec_warnings, *result.warnings]
    if o.single_node and _spans_nodes(workload, catalog):
        warnings.append(
            "--emit: layouts across nodes (expert parallelism over several nodes, pipeline stages) were left out of "
            "this plan, because --emit writes single-node launches only; size without --emit to see them"
        )
    warnings += transfer_warnings(
        catalog, (pr.pool.gpu for pr in result.plan.evaluation.pools), workload.precision, power=False
    )  # sizing's own warnings name a transferred power set
    if comparison is not None:
        warnings += list(comparison.skipped)
        warnings += [
            f"engine {r.engine.label}: no plan ({r.infeasible.message})" for r in comparison.runs if r.infeasible is not None
        ]
    schedule = None
    if o.schedule:
        # --time-limit-s bounds the whole run: the hours get what the sizing left (an hour it does not reach is
        # served by the peak plan, with a warning).
        schedule = api.size_schedule(
            workload,
            catalog,
            result.plan,
            lead_time_min=o.scale_up_lead_min,
            solver=o.solver,
            time_limit_s=o.time_limit_s,
            started_s=started,
        )
        inputs["schedule"] = {"scale_up_lead_min": schedule.lead_time_min, "lead_time_assumed": schedule.lead_time_assumed}
        warnings += [f"schedule: {w}" for w in schedule.warnings]
    simulation = None
    if o.verify:
        from planner.sim import SimOptions

        simulation = api.simulate(workload, result.plan.deployment, catalog, SimOptions(requests=VERIFY_REQUESTS))
        warnings += [f"verify: {w}" for w in simulation.warnings]
    return SizeRun(
        options=o,
        spec=spec,
        workload=workload,
        catalog=catalog,
        result=result,
        comparison=comparison,
        simulation=simulation,
        inputs=inputs,
        warnings=tuple(warnings),
        sources=sources,
        schedule=schedule,
    )


def size_sweeps(run: SizeRun, workload: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sweeps the HTML report of a :func:`run_size` charts (:func:`planner.api.sweep.report_sweeps`
    of its workload document, or of ``workload``, the document as the result's JSON holds it)."""
    from planner.api.sweep import report_sweeps

    doc = workload if workload is not None else run.inputs["workload"]
    return report_sweeps(doc, run.catalog, solver=run.options.solver, time_limit_s=run.options.time_limit_s)


# ------------------------------------------------------------------------------ --schedule: a day of load


def _check_schedule_options(o: SizeOptions) -> None:
    """``--scale-up-lead-min`` needs ``--schedule`` and a lead time the schedule models (refused before sizing)."""
    if o.scale_up_lead_min is not None and not o.schedule:
        raise InputError("--scale-up-lead-min: needs --schedule (it prices the replicas the hourly plans add)")
    if o.schedule and o.scale_up_lead_min is not None:
        from planner.optimize.schedule import check_lead_time

        check_lead_time(o.scale_up_lead_min)


def _check_schedule_spec(spec: WorkloadSpec, origin: str) -> None:
    """``--schedule`` needs a day that is not flat or a growth to plan: refused before sizing otherwise."""
    if spec.growth is None and all(k.rate_profile is None for k in spec.classes):
        where = "the workload from flags" if origin == "flags" else origin
        raise InputError(
            f"--schedule: {where}: no class has a rate_profile and there is no growth, so the day is flat: every hour "
            "would be the peak plan that planner size prints",
            hint="give classes[].rate_profile.hourly_rps (24 rates, hour 0 first; planner profile prints a trace's "
            "hourly rates), or growth: {per_month_frac, months}",
        )


def size_schedule(
    workload: Workload,
    catalog: Catalog,
    plan: Solved,
    *,
    lead_time_min: float | None = None,
    solver: str = "highs",
    time_limit_s: float | None = None,
    started_s: float | None = None,
) -> Schedule:
    """Each hour of the day planned at its rates against the fleet ``plan`` (the plan :func:`size` found for
    ``workload``), priced over the day, and the purchases by month under ``workload.growth`` (see
    :mod:`planner.optimize.schedule`). ``time_limit_s`` counts from ``started_s`` (``time.monotonic()``, when the
    run it bounds began; default: now)."""
    from planner.optimize.schedule import day_schedule

    if solver not in ("highs", "cbc"):
        raise InputError(f"--solver {solver}: use highs or cbc")
    if time_limit_s is not None and not time_limit_s > 0:
        raise InputError("--time-limit-s must be positive")
    return day_schedule(
        workload,
        catalog,
        plan,
        lead_time_min=lead_time_min,
        solver=solver,  # type: ignore[arg-type]
        time_limit_s=time_limit_s,
        started_s=started_s,
    )
