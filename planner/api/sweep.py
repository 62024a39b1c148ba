"""Parameter sweeps: re-size a workload across a range of one input (or a grid of several).

Each point is the workload *document* with one or more fields changed, resolved exactly as
``planner size`` resolves a file, so a sweep point and a ``planner size`` run of the changed
document give the same plan. Points run in parallel across local cores (one process each, the
catalog sent once per worker) and come back in point order; the solver is deterministic, so the
result does not depend on the number of workers.

Variables (``--vary NAME=START:STOP:STEPS`` or ``NAME=v1,v2,...``):

* ``rate_rps``: the workload's total peak arrival rate, requests/s; every class's rate is scaled by
  the same factor (the class mix is kept);
* ``ttft_p99_ms`` / ``tpot_p99_ms``: every class's TTFT / TPOT target, ms, at the class's own SLO
  percentile (p99 unless its document says otherwise);
* ``isl``: mean input tokens per request (rate-weighted over classes); every class's input length
  distribution (mean, percentiles, max or histogram bins) is scaled by the same factor;
* ``price:GPU``: that GPU's on-demand price, USD per GPU-hour (replaces its default catalog price;
  reserved pricing applies its discount to it; not used under capex pricing).
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.api.executor import MAX_JOBS, Progress, check_execution, cpu_count, execute, fingerprint
from planner.domain import Catalog, GpuPrice, InputSource, Pool, Workload
from planner.errors import InfeasibleError, InputError, PlannerError
from planner.io.catalog import IdIndex
from planner.optimize.sizing import SizeResult
from planner.units import HOURS_PER_MONTH

if TYPE_CHECKING:
    from planner.io.workload import WorkloadSpec

__all__ = [
    "MAX_JOBS",
    "MAX_POINTS",
    "UNITS",
    "VARIABLES",
    "SweepOptions",
    "SweepRun",
    "Task",
    "Vary",
    "apply_catalog",
    "apply_doc",
    "configuration",
    "cpu_count",
    "crossings",
    "make_tasks",
    "pareto_front",
    "parse_vary",
    "point_data",
    "report_sweeps",
    "run_points",
    "run_sweep",
    "sweep",
]

MAX_POINTS = 500
VARIABLES = ("rate_rps", "ttft_p99_ms", "tpot_p99_ms", "isl", "price:GPU")
UNITS = {"rate_rps": "requests/s", "ttft_p99_ms": "ms", "tpot_p99_ms": "ms", "isl": "tokens", "price": "USD/GPU-hour"}
_HINT = "use --vary NAME=START:STOP:STEPS or NAME=v1,v2,... with NAME one of " + ", ".join(VARIABLES)


@dataclass(frozen=True, slots=True)
class Vary:
    """One swept variable and its values. ``name`` is canonical (``price:<gpu id>``)."""

    name: str
    values: tuple[float, ...]

    @property
    def unit(self) -> str:
        return UNITS[self.name.split(":")[0]]


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--vary: {what} {text!r} is not a number", hint=_HINT) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"--vary: {what} {text!r} must be a positive finite number", hint=_HINT)
    return value


def parse_vary(text: str, catalog: Catalog) -> Vary:
    """``NAME=START:STOP:STEPS`` (STEPS points, evenly spaced, ends included) or ``NAME=v1,v2,...``."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not rest.strip():
        raise InputError(f"--vary {text!r}: expected NAME=START:STOP:STEPS or NAME=v1,v2,...", hint=_HINT)
    if name.startswith("price:"):
        gpu = IdIndex("GPU", catalog.gpus).resolve(name[len("price:") :], "--vary price")
        if catalog.default_price(gpu) is None:
            raise InputError(f"--vary {name}: {gpu} has no default price in the catalog to replace")
        name = f"price:{gpu}"
    elif name not in UNITS or name == "price":
        raise InputError(f"--vary: unknown variable {name!r}", hint=_HINT)
    rest = rest.strip()
    if re.fullmatch(r"[^:,]+:[^:,]+:[^:,]+", rest):
        a, b, n = rest.split(":")
        start, stop = _number(a, "START"), _number(b, "STOP")
        try:
            steps = int(n)
        except ValueError:
            raise InputError(f"--vary: STEPS {n!r} must be a whole number", hint=_HINT) from None
        if steps < 1 or steps > MAX_POINTS:
            raise InputError(f"--vary: STEPS {steps} must be between 1 and {MAX_POINTS}")
        if steps == 1:
            values: tuple[float, ...] = (start,)
        else:
            values = tuple(float(f"{start + (stop - start) * i / (steps - 1):.12g}") for i in range(steps))
    elif ":" in rest:
        raise InputError(f"--vary {text!r}: a range is START:STOP:STEPS (three numbers)", hint=_HINT)
    else:
        values = tuple(_number(v.strip(), "value") for v in rest.split(","))
        if len(values) > MAX_POINTS:
            raise InputError(f"--vary: at most {MAX_POINTS} values")
    return Vary(name=name, values=values)


# ---------------------------------------------------------------------------------------------
# Applying a setting to the workload document (a plain dict, as read from YAML) or the catalog.


def _scale_tokens(stats: dict[str, Any], factor: float) -> None:
    for key in ("mean", "p50", "p90", "p99", "max"):
        if stats.get(key) is not None:
            stats[key] = stats[key] * factor
    if stats.get("histogram") is not None:
        stats["histogram"] = [[t * factor, w] for t, w in stats["histogram"]]


def _set_target(doc: dict[str, Any], metric: str, ms: float) -> None:
    for cls in doc["classes"]:
        key = next(k for k in cls["slo"] if k.startswith(metric + "_"))
        cls["slo"][key] = ms


def apply_doc(doc: dict[str, Any], name: str, value: float, catalog: Catalog) -> dict[str, Any]:
    """A copy of the workload document with ``name`` set to ``value`` (``price:*`` leaves it alone).
    ``ttft_x`` / ``tpot_x`` / ``rate_x`` (internal) scale every class's target or rate by ``value``."""
    out = copy.deepcopy(doc)
    classes = out["classes"]
    if name == "rate_rps":
        total = sum(c["rate_rps"] for c in classes)
        for c in classes:
            c["rate_rps"] = c["rate_rps"] * value / total
    elif name == "rate_x":
        for c in classes:
            c["rate_rps"] = c["rate_rps"] * value
    elif name in ("ttft_p99_ms", "tpot_p99_ms"):
        _set_target(out, name[:4], value)
    elif name in ("ttft_x", "tpot_x"):
        for c in classes:
            key = next(k for k in c["slo"] if k.startswith(name[:4] + "_"))
            c["slo"][key] = c["slo"][key] * value
    elif name == "isl":
        total = sum(c["rate_rps"] for c in classes)
        mean = sum(c["rate_rps"] * _mean_tokens(c["input_tokens"]) for c in classes) / total
        for c in classes:
            _scale_tokens(c["input_tokens"], value / mean)
    elif not name.startswith("price:"):
        raise InputError(f"--vary: unknown variable {name!r}", hint=_HINT)
    return out


def _mean_tokens(stats: dict[str, Any]) -> float:
    if stats.get("histogram") is not None:
        bins = stats["histogram"]
        return float(sum(t * w for t, w in bins) / sum(w for _, w in bins))
    return float(stats["mean"])


def apply_catalog(catalog: Catalog, name: str, value: float) -> Catalog:
    if not name.startswith("price:"):
        return catalog
    gpu = name.split(":", 1)[1]
    prices = tuple(replace(p, usd_per_gpu_hour=value) if p.gpu == gpu and p.default else p for p in catalog.prices)
    return replace(catalog, prices=prices)


# ---------------------------------------------------------------------------------------------
# Running the points.


@dataclass(frozen=True, slots=True)
class Task:
    index: int
    settings: tuple[tuple[str, float], ...]
    workload: Workload | None  # None when the document did not resolve (error holds why)
    prices: tuple[GpuPrice, ...] | None  # overridden catalog prices, when a price is swept
    error: str | None = None


_CATALOG: Catalog | None = None


def _init(catalog: Catalog) -> None:
    """Worker start (:func:`planner.api.executor.execute` runs it once per worker): keep the catalog."""
    global _CATALOG
    _CATALOG = catalog


def _run(task: Task, solver: str, time_limit_s: float | None) -> dict[str, Any]:
    from planner.optimize.sizing import size

    assert _CATALOG is not None
    base: dict[str, Any] = {"index": task.index, "settings": {k: v for k, v in task.settings}}
    if task.workload is None:
        return {**base, "status": "error", "message": task.error}
    catalog = _CATALOG if task.prices is None else replace(_CATALOG, prices=task.prices)
    try:
        result = size(task.workload, catalog, solver=solver, time_limit_s=time_limit_s)  # type: ignore[arg-type]
    except InfeasibleError as exc:
        return {**base, "status": "infeasible", "message": exc.message}
    except PlannerError as exc:
        return {**base, "status": "error", "message": exc.message}
    return {**base, "status": "ok", **point_data(result)}


def configuration(result: SizeResult) -> tuple[str, str]:
    """(shape key, summary): the shape ignores replica counts, the summary names them."""
    pools = result.plan.deployment.pools

    def tp(p: Pool) -> str:
        return f"TP{p.tp}" + (f" ({p.layout})" if p.layout else "")

    shape = " + ".join(sorted(f"{p.role} {p.gpu} {tp(p)}" + (f" {p.link}" if p.link else "") for p in pools))
    summary = "; ".join(f"{p.role} {p.replicas}x {tp(p)} {p.gpu}" for p in pools)
    return shape, summary


def point_data(result: SizeResult) -> dict[str, Any]:
    """The figures of one sized point (all from the same SizeResult ``planner size`` reports)."""
    ev = result.plan.evaluation
    shape, summary = configuration(result)
    coloc = [b for b in result.baselines if b.name.startswith("colocated-") and b.solved is not None]
    best = min(coloc, key=lambda b: b.solved.evaluation.usd_per_hour) if coloc else None  # type: ignore[union-attr]
    return {
        "usd_per_month": ev.usd_per_month,
        "usd_per_hour": ev.usd_per_hour,
        "num_gpus": ev.num_gpus,
        "configuration": summary,
        "configuration_shape": shape,
        "disaggregated": any(p.role != "colocated" for p in result.plan.deployment.pools),
        "savings_frac": result.savings_frac,
        "best_colocated": None
        if best is None or best.solved is None
        else {
            "name": best.name,
            "usd_per_month": best.solved.evaluation.usd_per_hour * HOURS_PER_MONTH,
            "num_gpus": best.solved.evaluation.num_gpus,
        },
        "pools": [
            {
                "role": pr.pool.role,
                "gpu": pr.pool.gpu,
                "tp": pr.pool.tp,
                **pr.pool.layout_keys(),
                "replicas": pr.pool.replicas,
                "num_gpus": pr.pool.num_gpus,
                "utilization_frac": pr.utilization_frac,
            }
            for pr in ev.pools
        ],
        "ttft_at_slo_ms": max(c.ttft_at_slo_s for c in ev.classes) * 1e3,
        "tpot_at_slo_ms": max(c.tpot_at_slo_s for c in ev.classes) * 1e3,
    }


def make_tasks(
    doc: dict[str, Any], catalog: Catalog, grid: Sequence[Sequence[tuple[str, float]]], origin: str = "sweep"
) -> list[Task]:
    """Resolve each point's document here (cheap, and errors are named per point)."""
    from planner.io.workload import parse_workload, to_domain

    tasks = []
    for i, settings in enumerate(grid):
        d, prices = doc, None
        cat = catalog
        for name, value in settings:
            d = apply_doc(d, name, value, catalog)
            cat = apply_catalog(cat, name, value)
        if cat is not catalog:
            prices = cat.prices
        try:
            wl = to_domain(parse_workload(d, origin), cat, origin)
        except PlannerError as exc:
            tasks.append(Task(i, tuple(settings), None, None, exc.message))
            continue
        tasks.append(Task(i, tuple(settings), wl, prices))
    return tasks


def run_points(
    doc: dict[str, Any],
    catalog: Catalog,
    grid: Sequence[Sequence[tuple[str, float]]],
    *,
    solver: str = "highs",
    time_limit_s: float | None = None,
    jobs: int | None = None,
    origin: str = "sweep",
    backend: str = "local",
    address: str | None = None,
    run_dir: os.PathLike[str] | str | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Size every point of ``grid`` (each a list of (variable, value) settings), in point order.

    ``backend``, ``jobs``, ``address``, ``run_dir`` and ``progress``: how the points run
    (:func:`planner.api.executor.execute`); the rows do not depend on them. With ``run_dir``, a point's key is
    the hash of its resolved inputs (its settings, the workload document resolved, swept prices, solver and time
    limit) and the directory's study is the document, the grid, the solver, the time limit, the catalog's
    fingerprint and this planner's version."""
    from planner import __version__

    if solver not in ("highs", "cbc"):
        raise InputError(f"--solver {solver}: use highs or cbc")
    if time_limit_s is not None and not time_limit_s > 0:
        raise InputError("--time-limit-s must be positive")
    check_execution(backend, jobs, address)
    tasks = make_tasks(doc, catalog, grid, origin)
    study: dict[str, Any] | None = None
    keys: list[str] | None = None
    if run_dir is not None:
        study = {
            "study": "sweep",
            "planner_version": __version__,
            "workload": doc,
            "grid": [[[name, value] for name, value in point] for point in grid],
            "origin": origin,
            "solver": solver,
            "time_limit_s": time_limit_s,
            "catalog_sha256": fingerprint(catalog),
        }
        keys = [fingerprint((t.settings, t.workload, t.prices, t.error, solver, time_limit_s)) for t in tasks]
    rows = execute(
        tasks,
        functools.partial(_run, solver=solver, time_limit_s=time_limit_s),
        init=_init,
        init_args=(catalog,),
        backend=backend,
        jobs=jobs,
        address=address,
        run_dir=run_dir,
        study=study,
        keys=keys,
        progress=progress,
    )
    out = []
    for t, r in zip(tasks, rows, strict=True):  # a point that shares an earlier one's inputs has its row and key
        out.append(r if r["index"] == t.index else {"index": t.index, **{k: v for k, v in r.items() if k != "index"}})
    return out


def sweep(
    doc: dict[str, Any],
    catalog: Catalog,
    vary: Vary,
    *,
    solver: str = "highs",
    time_limit_s: float | None = None,
    jobs: int | None = None,
    origin: str = "sweep",
    backend: str = "local",
    address: str | None = None,
    run_dir: os.PathLike[str] | str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Sweep one variable: the points, where the configuration changes, where disaggregation pays."""
    rows = run_points(
        doc,
        catalog,
        [[(vary.name, v)] for v in vary.values],
        solver=solver,
        time_limit_s=time_limit_s,
        jobs=jobs,
        origin=origin,
        backend=backend,
        address=address,
        run_dir=run_dir,
        progress=progress,
    )
    points = []
    prev_shape: str | None = None
    for v, row in zip(vary.values, rows, strict=True):
        row = {k: x for k, x in row.items() if k != "settings"}
        row["value"] = v
        shape = row.pop("configuration_shape", None)
        row["configuration_changed"] = shape is not None and prev_shape is not None and shape != prev_shape
        if shape is not None:
            prev_shape = shape
        points.append(row)
    return {
        "variable": vary.name,
        "unit": vary.unit,
        "points": points,
        "configuration_changes": [p["value"] for p in points if p["configuration_changed"]],
        "disaggregation_crossings": crossings(points),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepOptions:
    """Everything ``planner sweep`` takes, but how the result is shown."""

    workload_file: Path  # the workload document
    vary: str  # NAME=START:STOP:STEPS or NAME=v1,v2,... (see the module docstring)
    solver: str = "highs"  # highs or cbc
    time_limit_s: float | None = None  # time limit of each point's sizing run (all its solves), seconds
    jobs: int | None = None  # worker processes (None: one per usable CPU; capped at that count)
    backend: str = "local"  # local (worker processes) or ray (Ray tasks; the planner[ray] extra)
    address: str | None = None  # the Ray cluster's address (None: a local Ray instance of `jobs` CPUs)
    run_dir: Path | None = None  # keeps each finished point; a study run again on it computes only the missing ones
    progress: Progress | None = None  # progress(done, total) after each point (see planner.api.executor)
    engine: str | None = None  # NAME or NAME@VERSION (None: the workload's engine, else the default)
    catalog_dirs: Sequence[Path] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepRun:
    """What :func:`run_sweep` found: ``inputs`` and ``data`` are the JSON envelope's objects."""

    options: SweepOptions
    source: InputSource  # the workload file as read (its text and SHA-256)
    spec: WorkloadSpec
    catalog: Catalog  # the catalog the points were sized with (engine selected)
    vary: Vary
    workload: dict[str, Any]  # the workload document every point changes
    inputs: dict[str, Any]
    data: dict[str, Any]  # :func:`sweep`'s result
    files_read: tuple[Path, ...]  # the files the options name (no output may replace them)


def run_sweep(options: SweepOptions) -> SweepRun:
    """``planner sweep``: read the workload (once), select its catalog and engine, check that the unchanged
    document resolves, parse ``vary`` and size every point (:func:`sweep`)."""
    from planner.io.sources import reading_once

    with reading_once():
        return _run_sweep(options)


def _run_sweep(options: SweepOptions) -> SweepRun:
    from planner.api.inputs import load_workload_spec, resolve_workload, workload_catalog
    from planner.io.sources import read_source
    from planner.report.engine import engine_doc

    path = options.workload_file
    spec = load_workload_spec(path)
    source = read_source(path)  # the bytes just parsed (inside reading_once, not read again)
    catalog = workload_catalog(spec, path, options.catalog_dirs, options.engine)
    resolve_workload(spec, catalog, str(path))  # the unchanged document must resolve
    v = parse_vary(options.vary, catalog)
    doc = spec.model_dump(mode="json", exclude_none=True)
    data = sweep(
        doc,
        catalog,
        v,
        solver=options.solver,
        time_limit_s=options.time_limit_s,
        jobs=options.jobs,
        origin=str(path),
        backend=options.backend,
        address=options.address,
        run_dir=options.run_dir,
        progress=options.progress,
    )
    inputs: dict[str, Any] = {
        "workload_file": str(path),
        "workload_sha256": source.sha256,
        "workload": doc,
        "vary": {"variable": v.name, "values": list(v.values), "unit": v.unit},
        "solver": options.solver,
        "engine": engine_doc(catalog.engine),
    }
    return SweepRun(
        options=options,
        source=source,
        spec=spec,
        catalog=catalog,
        vary=v,
        workload=doc,
        inputs=inputs,
        data=data,
        files_read=(path,),
    )


def crossings(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where savings against the best co-located baseline change sign, between consecutive points
    that have a figure: ``starts`` (disaggregation starts paying) or ``stops``."""
    out = []
    have = [p for p in points if p.get("status") == "ok" and p.get("savings_frac") is not None]
    for a, b in itertools.pairwise(have):
        pa, pb = a["savings_frac"] > 0, b["savings_frac"] > 0
        if pa != pb:
            out.append({"kind": "starts" if pb else "stops", "between": [a["value"], b["value"]]})
    return out


def report_sweeps(
    doc: dict[str, Any], catalog: Catalog, *, solver: str = "highs", time_limit_s: float | None = None, jobs: int | None = None
) -> dict[str, Any]:
    """The small sweeps an HTML report charts: a capacity curve (8 rates from 1/4 to 2x the
    workload's total rate) and a 4x4 grid of TTFT x TPOT targets (0.8 to 1.5 times the stated ones)."""
    rate_factors = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    slo_factors = (0.8, 1.0, 1.25, 1.5)
    grid: list[list[tuple[str, float]]] = [[("rate_x", f)] for f in rate_factors]
    grid += [[("ttft_x", a), ("tpot_x", b)] for a in slo_factors for b in slo_factors]
    rows = run_points(doc, catalog, grid, solver=solver, time_limit_s=time_limit_s, jobs=jobs)
    first = doc["classes"][0]
    ttft_key = next(k for k in first["slo"] if k.startswith("ttft_"))
    tpot_key = next(k for k in first["slo"] if k.startswith("tpot_"))
    total = sum(c["rate_rps"] for c in doc["classes"])
    capacity = []
    for f, row in zip(rate_factors, rows[: len(rate_factors)], strict=True):
        capacity.append({"rate_rps": total * f, **_brief(row)})
    pareto = []
    for settings, row in zip(grid[len(rate_factors) :], rows[len(rate_factors) :], strict=True):
        a, b = settings[0][1], settings[1][1]
        pareto.append({"ttft_target_ms": first["slo"][ttft_key] * a, "tpot_target_ms": first["slo"][tpot_key] * b, **_brief(row)})
    front = pareto_front(pareto)
    for i, p in enumerate(pareto):
        p["on_front"] = i in front
    return {
        "capacity_curve": capacity,
        "slo_grid": pareto,
        "slo_grid_class": first["name"],
        "slo_grid_note": "every class's targets scaled alike" if len(doc["classes"]) > 1 else "",
    }


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "usd_per_month", "num_gpus", "configuration", "savings_frac", "message")
    return {k: row.get(k) for k in keys if k in row}


def pareto_front(points: Sequence[dict[str, Any]]) -> set[int]:
    """Indices of feasible points no other feasible point beats: targets as tight or tighter and
    cost as low or lower, one of them strictly."""
    ok = [(i, p) for i, p in enumerate(points) if p.get("status") == "ok"]

    def key(q: dict[str, Any]) -> tuple[float, float, float]:
        return (q["ttft_target_ms"], q["tpot_target_ms"], q["usd_per_month"])

    front = set()
    for i, p in ok:
        kp = key(p)
        if not any(all(a <= b for a, b in zip(key(q), kp, strict=True)) and key(q) != kp for j, q in ok if j != i):
            front.add(i)
    return front
