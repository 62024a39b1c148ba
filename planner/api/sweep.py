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
  reserved pricing applies its discount to it; not used under capex pricing);
* any other NAME is a dotted path into the workload document (:mod:`planner.io.docpath`), checked against the
  workload schema: ``classes.chat.rate_rps``, ``classes[0].slo.ttft_p99_ms``, ``constraints.max_gpus.h100-sxm``,
  ``pricing.discount_frac``, ``hardware.decode_gpus=h100-sxm|a100-sxm-80gb,h100-sxm`` (a list of ids: ``|``),
  ``engine=vllm,sglang`` (each point's engine profile), ``growth.per_month_frac``; values are numbers, text,
  ``true``/``false`` or ``null`` as the field takes. Ranges are for number fields only.

Several ``--vary`` options make the Cartesian product of their values (the last varies fastest; at most
:data:`MAX_GRID` points). ``--scenarios FILE`` (:mod:`planner.io.scenarios`) is a listed set of named scenarios, each
setting some variables; with ``--vary`` too, every scenario is swept over the ``--vary`` grid (a product: the
scenario is the first axis), and a variable may not be both in the file and in a ``--vary``. Each point's document
is validated as ``planner size`` validates a file; a point whose document is invalid is an error row naming the
field. :func:`change_summary` says where the plan's shape changes along each axis with the others held fixed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import math
import os
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.api.executor import MAX_JOBS, Progress, check_execution, cpu_count, execute, fingerprint
from planner.domain import Catalog, GpuPrice, InputSource, Pool, Workload
from planner.errors import InfeasibleError, InputError, PlannerError
from planner.io.catalog import IdIndex
from planner.io.scenarios import Scenario
from planner.optimize.sizing import SizeResult
from planner.units import HOURS_PER_MONTH

if TYPE_CHECKING:
    from planner.io.workload import WorkloadSpec

__all__ = [
    "MAX_GRID",
    "MAX_JOBS",
    "MAX_POINTS",
    "UNITS",
    "VARIABLES",
    "Scenario",
    "Setting",
    "SweepOptions",
    "SweepRun",
    "Task",
    "Value",
    "Vary",
    "apply_catalog",
    "apply_doc",
    "change_summary",
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
    "sweep_grid",
]

MAX_POINTS = 500  # values of one axis
MAX_GRID = 10_000  # points of a whole sweep (the product of the axes, times the scenarios)
VARIABLES = ("rate_rps", "ttft_p99_ms", "tpot_p99_ms", "isl", "price:GPU")
UNITS = {"rate_rps": "requests/s", "ttft_p99_ms": "ms", "tpot_p99_ms": "ms", "isl": "tokens", "price": "USD/GPU-hour"}
_HINT = (
    "use --vary NAME=START:STOP:STEPS or NAME=v1,v2,... with NAME one of "
    + ", ".join(VARIABLES)
    + " or a dotted path into the workload (classes.chat.rate_rps, classes[0].slo.ttft_p99_ms, engine, ...)"
)

Value = float | int | str | bool | tuple[str, ...] | None
"""One setting's value: a number, text, a list of ids (a tuple), or None (an optional field left unset)."""
Setting = tuple[str, Value]


@dataclass(frozen=True, slots=True)
class Vary:
    """One swept variable and its values. ``name`` is canonical (``price:<gpu id>``, or the dotted path as given)."""

    name: str
    values: tuple[Value, ...]
    path_unit: str = ""  # a dotted path's unit (from its field name)
    kind: str = "number"  # number, integer, boolean, string or strings (a list of ids)

    @property
    def unit(self) -> str:
        return UNITS[self.name.split(":")[0]] if _is_legacy(self.name) else self.path_unit


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--vary: {what} {text!r} is not a number", hint=_HINT) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"--vary: {what} {text!r} must be a positive finite number", hint=_HINT)
    return value


def _is_legacy(name: str) -> bool:
    return name.startswith("price:") or (name in UNITS and name != "price")


def _canonical(name: str, catalog: Catalog, doc: dict[str, Any] | None, where: str) -> tuple[str, Any]:
    """(canonical name, the DocPath of a dotted path or None)."""
    from planner.io.docpath import parse_path

    if name.startswith("price:"):
        gpu = IdIndex("GPU", catalog.gpus).resolve(name[len("price:") :], f"{where} price")
        if catalog.default_price(gpu) is None:
            raise InputError(f"{where} {name}: {gpu} has no default price in the catalog to replace")
        return f"price:{gpu}", None
    if _is_legacy(name):
        return name, None
    if doc is None or name == "price" or not name or name[0] in "0123456789":
        raise InputError(f"{where}: unknown variable {name!r}", hint=_HINT)
    try:
        path = parse_path(name, doc, where)
    except InputError as exc:
        if "." not in name and "[" not in name and "is not a field" in exc.message:  # a misspelt variable
            raise InputError(f"{where}: unknown variable {name!r}", hint=_HINT) from None
        raise exc from None
    return path.text, path


def parse_vary(text: str, catalog: Catalog, doc: dict[str, Any] | None = None) -> Vary:
    """``NAME=START:STOP:STEPS`` (STEPS points, evenly spaced, ends included) or ``NAME=v1,v2,...``. NAME is one of
    :data:`VARIABLES` or (given the workload document ``doc``) a dotted path into it."""
    from planner.io.docpath import parse_value

    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not rest.strip():
        raise InputError(f"--vary {text!r}: expected NAME=START:STOP:STEPS or NAME=v1,v2,...", hint=_HINT)
    name, path = _canonical(name, catalog, doc, "--vary")
    rest = rest.strip()
    numeric = path is None or path.kind in ("number", "integer")
    values: tuple[Value, ...]
    if numeric and re.fullmatch(r"[^:,]+:[^:,]+:[^:,]+", rest):
        a, b, n = rest.split(":")
        if path is None:
            start, stop = _number(a, "START"), _number(b, "STOP")
        else:
            ends = [parse_value(path, x, "--vary") for x in (a, b)]
            if any(not isinstance(e, (int, float)) for e in ends):
                raise InputError(f"--vary {text!r}: a range is START:STOP:STEPS (three numbers)", hint=_HINT)
            start, stop = float(ends[0]), float(ends[1])
        try:
            steps = int(n)
        except ValueError:
            raise InputError(f"--vary: STEPS {n!r} must be a whole number", hint=_HINT) from None
        if steps < 1 or steps > MAX_POINTS:
            raise InputError(f"--vary: STEPS {steps} must be between 1 and {MAX_POINTS}")
        if steps == 1:
            values = (start,)
        else:
            values = tuple(float(f"{start + (stop - start) * i / (steps - 1):.12g}") for i in range(steps))
        if path is not None and path.kind == "integer":
            if any(float(v) != int(float(v)) for v in values):  # type: ignore[arg-type]
                raise InputError(f"--vary {name}: {rest} gives values that are not whole numbers (the field is a count)")
            values = tuple(int(float(v)) for v in values)  # type: ignore[arg-type]
    elif numeric and ":" in rest:
        raise InputError(f"--vary {text!r}: a range is START:STOP:STEPS (three numbers)", hint=_HINT)
    elif path is None:
        values = tuple(_number(v.strip(), "value") for v in rest.split(","))
    else:
        values = tuple(parse_value(path, v, "--vary") for v in rest.split(","))
    if len(values) > MAX_POINTS:
        raise InputError(f"--vary: at most {MAX_POINTS} values")
    if path is None:
        return Vary(name=name, values=values)
    return Vary(name=name, values=values, path_unit=path.unit, kind=path.kind)


def parse_setting(name: str, value: Any, where: str, catalog: Catalog, doc: dict[str, Any]) -> Setting:
    """One variable of a scenario: (canonical name, value); ``value`` is text (CSV) or typed (YAML)."""
    from planner.io.docpath import coerce_value

    canon, path = _canonical(name, catalog, doc, where)
    if path is not None:
        return canon, coerce_value(path, value, where)
    try:
        number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{where}: {name}: {value!r} is not a positive finite number")
    return canon, number


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


def apply_doc(doc: dict[str, Any], name: str, value: Value, catalog: Catalog) -> dict[str, Any]:
    """A copy of the workload document with ``name`` set to ``value`` (``price:*`` leaves it alone).
    ``ttft_x`` / ``tpot_x`` / ``rate_x`` (internal) scale every class's target or rate by ``value``;
    any other name is a dotted path (:mod:`planner.io.docpath`)."""
    out = copy.deepcopy(doc)
    if not _is_legacy(name) and name not in ("rate_x", "ttft_x", "tpot_x"):
        from planner.io.docpath import apply_path, parse_path

        apply_path(out, parse_path(name, doc, "--vary"), value)
        return out
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
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


def apply_catalog(catalog: Catalog, name: str, value: Value) -> Catalog:
    if not name.startswith("price:") or not isinstance(value, (int, float)):
        return catalog
    gpu = name.split(":", 1)[1]
    prices = tuple(replace(p, usd_per_gpu_hour=value) if p.gpu == gpu and p.default else p for p in catalog.prices)
    return replace(catalog, prices=prices)


# ---------------------------------------------------------------------------------------------
# Running the points.


@dataclass(frozen=True, slots=True)
class Task:
    index: int
    settings: tuple[Setting, ...]
    workload: Workload | None  # None when the document did not resolve (error holds why)
    prices: tuple[GpuPrice, ...] | None  # overridden catalog prices, when a price or the provider is swept
    error: str | None = None
    engine: str | None = None  # the engine profile to select, when the engine is swept (id@version)


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
    if task.engine is not None:
        from planner.io.catalog import select_engine

        catalog = select_engine(catalog, task.engine)
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


def make_tasks(doc: dict[str, Any], catalog: Catalog, grid: Sequence[Sequence[Setting]], origin: str = "sweep") -> list[Task]:
    """Resolve each point's document here (cheap, and errors are named per point). A point that sets
    ``pricing.provider`` takes that provider's prices (``catalog`` is then the one without a provider); one that
    sets ``engine`` is sized under that engine profile."""
    from planner.io.catalog import select_engine, with_provider
    from planner.io.workload import parse_workload, to_domain

    tasks = []
    for i, settings in enumerate(grid):
        d = doc
        names = {name for name, _ in settings}
        try:
            for name, value in settings:
                d = apply_doc(d, name, value, catalog)
            cat = catalog
            if "pricing.provider" in names and d.get("pricing", {}).get("provider") is not None:
                cat = with_provider(cat, d["pricing"]["provider"], f"{origin}: pricing.provider")
            engine = None
            if "engine" in names:
                cat = select_engine(cat, d.get("engine") or cat.default_engine, f"{origin}: engine")
                engine = cat.engine.label
            for name, value in settings:
                cat = apply_catalog(cat, name, value)
            wl = to_domain(parse_workload(d, origin), cat, origin)
        except PlannerError as exc:
            tasks.append(Task(i, tuple(settings), None, None, exc.message))
            continue
        tasks.append(Task(i, tuple(settings), wl, None if cat.prices is catalog.prices else cat.prices, engine=engine))
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
    return sweep_grid(
        doc,
        catalog,
        [vary],
        solver=solver,
        time_limit_s=time_limit_s,
        jobs=jobs,
        origin=origin,
        backend=backend,
        address=address,
        run_dir=run_dir,
        progress=progress,
    )


SCENARIO_AXIS = "scenario"


def grid_size(axes: Sequence[Vary], scenarios: Sequence[Scenario] = ()) -> int:
    return math.prod(len(a.values) for a in axes) * (len(scenarios) if scenarios else 1)


def check_grid(axes: Sequence[Vary], scenarios: Sequence[Scenario] = ()) -> int:
    """The number of points; an InputError for a variable given twice or a grid above :data:`MAX_GRID`."""
    if not axes and not scenarios:
        raise InputError("sweep: give --vary NAME=... (repeatable) or --scenarios FILE", hint=_HINT)
    names = [a.name for a in axes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"--vary {dup[0]}: given twice (one --vary per variable)")
    in_file = sorted({n for sc in scenarios for n, _ in sc.settings} & set(names))
    if in_file:
        raise InputError(f"--vary {in_file[0]}: also set by the scenarios file (a variable is swept in one place)")
    n = grid_size(axes, scenarios)
    if n > MAX_GRID:
        sizes = " x ".join([*([str(len(scenarios))] if scenarios else []), *(str(len(a.values)) for a in axes)])
        raise InputError(f"sweep: {sizes} = {n:,} points; at most {MAX_GRID:,}", hint="sweep fewer values per axis")
    return n


def sweep_grid(
    doc: dict[str, Any],
    catalog: Catalog,
    axes: Sequence[Vary],
    scenarios: Sequence[Scenario] = (),
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
    """Size every point of the product of ``scenarios`` (the first axis, when given) and ``axes``: one row per
    point with each axis's value, the change summary (:func:`change_summary`) and, for one ``--vary`` axis alone,
    the keys of the one-axis sweep (``variable``, ``unit``, ``points[].value``, ``configuration_changes``,
    ``disaggregation_crossings``)."""
    check_grid(axes, scenarios)
    names = ([SCENARIO_AXIS] if scenarios else []) + [a.name for a in axes]
    value_lists: list[Sequence[Any]] = ([[sc.name for sc in scenarios]] if scenarios else []) + [a.values for a in axes]
    coords = list(itertools.product(*(range(len(v)) for v in value_lists)))
    grid: list[list[Setting]] = []
    for c in coords:
        settings: list[Setting] = []
        for axis, k in enumerate(c):
            if scenarios and axis == 0:
                settings += scenarios[k].settings
            else:
                settings.append((names[axis], value_lists[axis][k]))
        grid.append(settings)
    # run_points' annotation names numbers only; make_tasks (which it calls) takes every Value.
    rows = run_points(
        doc,
        catalog,
        typing.cast("Sequence[Sequence[tuple[str, float]]]", grid),
        solver=solver,
        time_limit_s=time_limit_s,
        jobs=jobs,
        origin=origin,
        backend=backend,
        address=address,
        run_dir=run_dir,
        progress=progress,
    )
    engines = _point_engines(catalog, grid)
    points = []
    for c, settings, row in zip(coords, grid, rows, strict=True):
        point = dict(row)
        point["values"] = {names[a]: value_lists[a][k] for a, k in enumerate(c)}
        point["settings"] = {k: v for k, v in settings}
        points.append(point)
    for point, label in zip(points, engines, strict=True):
        if label is not None:
            point["engine"] = label
    summary = change_summary(names, value_lists, coords, points)
    for point in points:
        point.pop("configuration_shape", None)
    data: dict[str, Any] = {
        "axes": [_axis_doc(a) for a in axes],
        "num_points": len(points),
        "points": points,
        "summary": summary,
    }
    if scenarios:
        data["axes"].insert(
            0,
            {
                "variable": SCENARIO_AXIS,
                "unit": "",
                "kind": "scenario",
                "values": [sc.name for sc in scenarios],
                "scenarios": [{"name": sc.name, "settings": {k: v for k, v in sc.settings}} for sc in scenarios],
            },
        )
    if len(axes) == 1 and not scenarios:  # the one-axis shape, as before multi-axis sweeps
        (axis,) = summary["axes"]
        changed = {tuple(ch["between"]) for ch in axis["configuration_changes"]}
        prev: Any = None
        for p in points:
            p["value"] = p["values"][axes[0].name]
            p["configuration_changed"] = p["status"] == "ok" and (prev, p["value"]) in changed
            if p["status"] == "ok":
                prev = p["value"]
        data.update(
            variable=axes[0].name,
            unit=axes[0].unit,
            configuration_changes=[ch["between"][1] for ch in axis["configuration_changes"]],
            disaggregation_crossings=[{"kind": x["kind"], "between": x["between"]} for x in axis["disaggregation_crossings"]],
        )
    return data


def _axis_doc(a: Vary) -> dict[str, Any]:
    return {"variable": a.name, "unit": a.unit, "kind": a.kind, "values": list(a.values)}


def _point_engines(catalog: Catalog, grid: Sequence[Sequence[Setting]]) -> list[str | None]:
    """``ID@VERSION`` of each point that sets the engine (None: the sweep's engine)."""
    from planner.io.catalog import select_engine

    out: list[str | None] = []
    for settings in grid:
        if not any(k == "engine" for k, _ in settings):
            out.append(None)
            continue
        value = next(v for k, v in settings if k == "engine") or catalog.default_engine
        label = None
        if isinstance(value, str):
            with contextlib.suppress(PlannerError):
                label = select_engine(catalog, value).engine.label
        out.append(label)
    return out


def _config_ids(points: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Shape -> ``C1``, ``C2``, ... in the order the shapes first appear."""
    ids: dict[str, str] = {}
    for p in points:
        shape = p.get("configuration_shape")
        if p.get("status") == "ok" and shape is not None and shape not in ids:
            ids[shape] = f"C{len(ids) + 1}"
    return ids


def change_summary(
    names: Sequence[str],
    value_lists: Sequence[Sequence[Any]],
    coords: Sequence[tuple[int, ...]],
    points: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Where the plan's configuration changes across the grid.

    ``configurations``: each distinct shape (pool roles, GPUs, TP and layout, link; not replica counts) with an id,
    the points it is chosen at and, per axis, the values those points cover. ``axes``: per axis, walking its values
    with every other axis held fixed (over the points with a plan), each pair of neighbouring values between which
    the shape changes (``configuration_changes``: ``between``, ``at`` (the other axes' values), ``from``, ``to``) and
    between which the savings against the best co-located baseline change sign (``disaggregation_crossings``:
    ``kind`` starts or stops paying). Each point gets its ``configuration_id``."""
    ids = _config_ids(points)
    by_id: dict[str, list[int]] = {}
    for i, p in enumerate(points):
        shape = p.get("configuration_shape")
        p["configuration_id"] = ids.get(shape) if p.get("status") == "ok" and shape is not None else None
        if p["configuration_id"] is not None:
            by_id.setdefault(p["configuration_id"], []).append(i)
    configurations = []
    for shape, cid in ids.items():
        members = by_id[cid]
        covered = {}
        for a, name in enumerate(names):
            hit = {coords[i][a] for i in members}
            covered[name] = [v for k, v in enumerate(value_lists[a]) if k in hit]
        configurations.append(
            {
                "id": cid,
                "shape": shape,
                "disaggregated": points[members[0]]["disaggregated"],
                "num_points": len(members),
                "points": [points[i]["index"] for i in members],
                "values": covered,
            }
        )
    per_axis = []
    for a, name in enumerate(names):
        lines: dict[tuple[int, ...], list[int]] = {}
        for i, c in enumerate(coords):
            lines.setdefault(c[:a] + c[a + 1 :], []).append(i)
        changes, crossings_ = [], []
        for key in sorted(lines):
            members = sorted(lines[key], key=lambda i: coords[i][a])
            at = {n: value_lists[b][coords[members[0]][b]] for b, n in enumerate(names) if b != a}
            have = [i for i in members if points[i]["status"] == "ok"]
            for i, j in itertools.pairwise(have):
                if points[i]["configuration_id"] != points[j]["configuration_id"]:
                    changes.append(
                        {
                            "between": [points[i]["values"][name], points[j]["values"][name]],
                            "at": at,
                            "from": points[i]["configuration_id"],
                            "to": points[j]["configuration_id"],
                        }
                    )
            paid = [i for i in have if points[i].get("savings_frac") is not None]
            for i, j in itertools.pairwise(paid):
                pa, pb = points[i]["savings_frac"] > 0, points[j]["savings_frac"] > 0
                if pa != pb:
                    crossings_.append(
                        {
                            "kind": "starts" if pb else "stops",
                            "between": [points[i]["values"][name], points[j]["values"][name]],
                            "at": at,
                        }
                    )
        per_axis.append({"variable": name, "configuration_changes": changes, "disaggregation_crossings": crossings_})
    return {"configurations": configurations, "num_configurations": len(configurations), "axes": per_axis}


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepOptions:
    """Everything ``planner sweep`` takes, but how the result is shown."""

    workload_file: Path  # the workload document
    vary: str | Sequence[str] = ()  # NAME=START:STOP:STEPS or NAME=v1,v2,... each (see the module docstring)
    scenarios_file: Path | None = None  # a --scenarios file (YAML or CSV): the first axis
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
    vary: Vary | None  # the first --vary axis (None with --scenarios alone)
    axes: tuple[Vary, ...]  # every --vary axis, in the order given
    scenarios: tuple[Scenario, ...]  # of --scenarios (empty without)
    workload: dict[str, Any]  # the workload document every point changes
    inputs: dict[str, Any]
    data: dict[str, Any]  # :func:`sweep`'s result
    files_read: tuple[Path, ...]  # the files the options name (no output may replace them)
    warnings: tuple[str, ...] = ()  # the envelope's warnings


def run_sweep(options: SweepOptions) -> SweepRun:
    """``planner sweep``: read the workload (once), select its catalog and engine, check that the unchanged
    document resolves, parse ``vary`` and size every point (:func:`sweep`)."""
    from planner.io.sources import reading_once

    with reading_once():
        return _run_sweep(options)


def _run_sweep(options: SweepOptions) -> SweepRun:
    from planner.api.inputs import load_workload_spec, resolve_workload, workload_catalog
    from planner.io.scenarios import read_scenarios
    from planner.io.sources import read_source
    from planner.report.engine import engine_doc

    path = options.workload_file
    spec = load_workload_spec(path)
    source = read_source(path)  # the bytes just parsed (inside reading_once, not read again)
    catalog = workload_catalog(spec, path, options.catalog_dirs, options.engine)
    resolve_workload(spec, catalog, str(path))  # the unchanged document must resolve
    doc = spec.model_dump(mode="json", exclude_none=True)
    texts = [options.vary] if isinstance(options.vary, str) else list(options.vary)
    axes = tuple(parse_vary(t, catalog, doc) for t in texts)
    scenarios: tuple[Scenario, ...] = ()
    files: list[Path] = [path]
    scenario_inputs: dict[str, Any] | None = None
    if options.scenarios_file is not None:
        sc_path = options.scenarios_file
        scenarios, sha = read_scenarios(sc_path, lambda n, v, w: parse_setting(n, v, w, catalog, doc))
        files.append(sc_path)
        scenario_inputs = {"file": str(sc_path), "sha256": sha, "count": len(scenarios)}
    n = check_grid(axes, scenarios)
    names = {a.name for a in axes} | {k for sc in scenarios for k, _ in sc.settings}
    if options.engine is not None and "engine" in names:
        raise InputError("--engine and a swept engine: sweep the engine (engine=a,b) or fix it with --engine, not both")
    warnings = tuple(
        f"{name}: the sweep sizes each point for its peak rates, as planner size does without --schedule; "
        "growth and rate_profile change only the --schedule output, so this variable does not change the points"
        for name in sorted(names)
        if name.startswith("growth") or ".rate_profile" in name
    )
    if "pricing.provider" in names:  # each point picks its own prices: start from the catalog without a provider
        from planner.api.inputs import planning_catalog
        from planner.io.catalog import select_engine

        unset = spec.model_copy(update={"pricing": spec.pricing.model_copy(update={"provider": None})})
        catalog = select_engine(planning_catalog(unset, path, options.catalog_dirs), catalog.engine.label)
    data = sweep_grid(
        doc,
        catalog,
        axes,
        scenarios,
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
        "axes": [_axis_doc(a) for a in axes],
        "num_points": n,
        "solver": options.solver,
        "engine": engine_doc(catalog.engine),
    }
    if len(axes) == 1 and not scenarios:
        inputs["vary"] = {"variable": axes[0].name, "values": list(axes[0].values), "unit": axes[0].unit}
    if scenario_inputs is not None:
        inputs["scenarios"] = scenario_inputs
    return SweepRun(
        options=options,
        source=source,
        spec=spec,
        catalog=catalog,
        vary=axes[0] if axes else None,
        axes=axes,
        scenarios=scenarios,
        workload=doc,
        inputs=inputs,
        data=data,
        files_read=tuple(files),
        warnings=warnings,
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
