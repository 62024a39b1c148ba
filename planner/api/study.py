"""``planner study robust``: how a plan fares when the performance factors and the forecast are uncertain.

Each draw perturbs two things, both drawn up front in this process from one seeded ``numpy`` Generator, so the
result is byte-identical for any number of workers:

* **The performance core**: one lognormal multiplier on every prefill-phase step time (and the request's fixed
  latency before its first token) and one on every decode-phase step time (a chunked-prefill iteration carries
  decodes: it takes the decode multiplier). Their one-sigma is the engine profile's measured spread, the robust
  one-sigma of ln(predicted/measured) of the mean TTFT and the mean TPOT on the serving rows the profile was
  fitted on (the catalog's ``uncertainty`` block, :class:`planner.domain.TimeUncertainty`), and the two are
  correlated as those log ratios are. One pair per draw is shared by every GPU of the plan: the spread is the fit
  error of the engine's one set of overheads, measured across GPUs, so it is not independent per GPU.
  ``factor_sigma_scale`` scales both sigmas (0: the fitted factors exactly).
* **The forecast**: every class's rate times ``exp(F·z)``, ``F`` = ``rate_error_frac`` (the one-sigma of the log
  rate, about the relative error for small F; the forecast is the median), with
  ``z = √ρ·z_shared + √(1−ρ)·z_class`` (``rate_correlation`` ρ: 1, the default, one error for total demand;
  0, classes independent).

Modes: ``evaluate`` (default) sizes the plan once at the nominal inputs and evaluates that fixed plan per draw
(a class attains its SLOs in a draw when its TTFT and TPOT at the SLO percentile meet the targets, with the
workload's N+k spares out as ``planner check`` counts them, and no pool it uses is saturated); ``size`` re-sizes
per draw (cost and GPU distribution, how often the configuration changes). Both then search the **headroom**:
the smallest rate multiplier ``h`` ≥ 1 such that the plan sized for ``h ×`` the forecast rates (nominal factors)
holds every class's SLOs in at least ``confidence`` of the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from planner.api.executor import Progress, execute
from planner.domain import Catalog, Deployment, InputSource, TimeUncertainty, Workload
from planner.errors import InfeasibleError, InputError, PlannerError

if TYPE_CHECKING:
    from planner.io.workload import WorkloadSpec
    from planner.optimize.sizing import SizeResult

__all__ = [
    "DEFAULT_SEED",
    "MAX_DRAWS",
    "MAX_HEADROOM",
    "StudyOptions",
    "StudyRun",
    "draw_points",
    "parse_headroom",
    "run_study",
    "study_robust",
]

MAX_DRAWS = 10_000
"""Most draws one study takes (a size-mode draw is a whole sizing run: about seconds each on this machine)."""
MAX_HEADROOM = 4.0
"""The largest multiplier the headroom searches size for (rates times it, or targets divided by it)."""
HEADROOM_GRID = (1.1, 1.25, 1.5, 2.0, 3.0, MAX_HEADROOM)
"""The multipliers tried above 1 until one holds; then bisection between the last that failed and it."""
HEADROOM_TOL = 0.01
"""Bisection stops when the bracket is this narrow (multiplier)."""
DEFAULT_SEED = 20
"""``--seed`` when none is given: a fixed seed, so a study repeats byte for byte."""
MAX_JOBS = 1024
Mode = Literal["evaluate", "size"]


# ---------------------------------------------------------------------------------------------------- the draws


def draw_points(
    n: int,
    classes: Sequence[str],
    uncertainty: TimeUncertainty | None,
    *,
    rate_error_frac: float,
    rate_correlation: float,
    factor_sigma_scale: float,
    seed: int,
) -> list[dict[str, Any]]:
    """The ``n`` draws, generated here (one Generator, one matrix of standard normals whose shape does not depend on
    the sigmas, so studies that differ only in a sigma share their random numbers)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3 + len(classes)))
    s_p = s_d = rho = 0.0
    if uncertainty is not None:
        s_p = factor_sigma_scale * uncertainty.ttft_log_sigma
        s_d = factor_sigma_scale * uncertainty.tpot_log_sigma
        rho = uncertainty.correlation
    z_p = z[:, 0]
    z_d = rho * z[:, 0] + math.sqrt(max(0.0, 1.0 - rho * rho)) * z[:, 1]
    shared = math.sqrt(rate_correlation)
    own = math.sqrt(1.0 - rate_correlation)
    points = []
    for i in range(n):
        rate_x = {c: float(math.exp(rate_error_frac * (shared * z[i, 2] + own * z[i, 3 + k]))) for k, c in enumerate(classes)}
        points.append(
            {
                "index": i,
                "prefill_time_x": float(math.exp(s_p * z_p[i])),
                "decode_time_x": float(math.exp(s_d * z_d[i])),
                "rate_x": rate_x,
            }
        )
    return points


def _perturbed(workload: Workload, catalog: Catalog, point: Mapping[str, Any]) -> tuple[Workload, Catalog]:
    rate_x = point["rate_x"]
    classes = tuple(replace(c, rate_rps=c.rate_rps * rate_x[c.name]) for c in workload.classes)
    cat = replace(catalog, time_scale=(point["prefill_time_x"], point["decode_time_x"]))
    return replace(workload, classes=classes), cat


def scaled_rates(workload: Workload, factor: float) -> Workload:
    """The workload with every class's rate times ``factor`` (what the headroom search sizes for)."""
    return replace(workload, classes=tuple(replace(c, rate_rps=c.rate_rps * factor) for c in workload.classes))


# ------------------------------------------------------------------------------------------- what a worker does


@dataclass(frozen=True, slots=True, kw_only=True)
class _Context:
    workload: Workload
    catalog: Catalog
    deployment: Deployment | None  # evaluate this plan; None: re-size per draw
    nominal_shape: str
    nominal_summary: str
    solver: str
    time_limit_s: float | None


_CTX: _Context | None = None


def _init(ctx: _Context) -> None:
    global _CTX
    _CTX = ctx


def _run_point(point: dict[str, Any]) -> dict[str, Any]:
    assert _CTX is not None
    ctx = _CTX
    workload, catalog = _perturbed(ctx.workload, ctx.catalog, point)
    base = {k: point[k] for k in ("index", "prefill_time_x", "decode_time_x", "rate_x")}
    if ctx.deployment is not None:
        return {**base, **evaluate_point(workload, ctx.deployment, catalog)}
    return {**base, **_size_point(workload, catalog, ctx)}


def evaluate_point(workload: Workload, deployment: Deployment, catalog: Catalog) -> dict[str, Any]:
    """One draw of a fixed plan: per class whether it attains its SLOs (targets met at the SLO percentile and no
    pool it is routed to saturated), its TTFT and TPOT at the SLO percentile, and the busiest pool."""
    from planner.perf.evaluate import evaluate

    ev = evaluate(workload, deployment, catalog)
    saturated = {pr.pool.key for pr in ev.pools if pr.saturated}
    classes = []
    for c in ev.classes:
        used = {k for k, share in ev.routing.get(c.name, {}).items() if share > 0}
        sat = bool(used & saturated)
        classes.append(
            {
                "name": c.name,
                "meets_slo": c.meets_slo and not sat,
                "saturated": sat,
                "ttft_at_slo_ms": c.ttft_at_slo_s * 1e3,
                "tpot_at_slo_ms": c.tpot_at_slo_s * 1e3,
            }
        )
    return {
        "status": "ok",
        "meets_slos": all(c["meets_slo"] for c in classes),
        "classes": classes,
        "max_utilization_frac": max((pr.utilization_frac for pr in ev.pools), default=0.0),
    }


def _size_point(workload: Workload, catalog: Catalog, ctx: _Context) -> dict[str, Any]:
    from planner.api.sweep import configuration
    from planner.optimize.sizing import size

    try:
        result = size(workload, catalog, solver=ctx.solver, time_limit_s=ctx.time_limit_s, baselines=False)  # type: ignore[arg-type]
    except InfeasibleError as exc:
        return {"status": "infeasible", "message": exc.message}
    except PlannerError as exc:
        return {"status": "error", "message": exc.message}
    ev = result.plan.evaluation
    shape, summary = configuration(result)
    return {
        "status": "ok",
        "usd_per_month": ev.usd_per_month,
        "num_gpus": ev.num_gpus,
        "gpus": _gpus_by_pool(result),
        "configuration": summary,
        "configuration_changed": shape != ctx.nominal_shape,
        "plan_changed": summary != ctx.nominal_summary,
    }


def _gpus_by_pool(result: SizeResult) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in result.plan.deployment.pools:
        key = f"{p.role} {p.gpu}"
        out[key] = out.get(key, 0) + p.num_gpus
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------------------ execution


# ------------------------------------------------------------------------------------------------ the study


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    """p5, p50, p95 (taken from the draws, no interpolation: an infinite value stays infinite) and the mean."""
    a = np.array(values, dtype=float)
    out = {f"p{q}": float(np.percentile(a, q, method="inverted_cdf")) for q in (5, 50, 95)}
    out["mean"] = float(np.mean(a)) if np.all(np.isfinite(a)) else math.inf
    return out


def _attainment(rows: Sequence[dict[str, Any]], classes: Sequence[str]) -> dict[str, Any]:
    n = len(rows)
    return {
        "overall_frac": sum(1 for r in rows if r["meets_slos"]) / n,
        "by_class": {
            c: sum(1 for r in rows if next(x for x in r["classes"] if x["name"] == c)["meets_slo"]) / n for c in classes
        },
        "saturated_draws": sum(1 for r in rows if any(x["saturated"] for x in r["classes"])),
    }


def _latency(rows: Sequence[dict[str, Any]], classes: Sequence[str]) -> dict[str, Any]:
    out = {}
    for c in classes:
        mine = [next(x for x in r["classes"] if x["name"] == c) for r in rows]
        out[c] = {
            "ttft_at_slo_ms": _quantiles([x["ttft_at_slo_ms"] for x in mine]),
            "tpot_at_slo_ms": _quantiles([x["tpot_at_slo_ms"] for x in mine]),
        }
    return out


def _plan_doc(result: SizeResult) -> dict[str, Any]:
    from planner.api.sweep import configuration

    ev = result.plan.evaluation
    return {
        "usd_per_month": ev.usd_per_month,
        "num_gpus": ev.num_gpus,
        "configuration": configuration(result)[1],
        "gpus": _gpus_by_pool(result),
    }


def study_robust(
    workload: Workload,
    catalog: Catalog,
    *,
    draws: int,
    mode: Mode = "evaluate",
    rate_error_frac: float = 0.0,
    rate_correlation: float = 1.0,
    factor_sigma_scale: float = 1.0,
    confidence: float | None = 0.95,
    headroom: Sequence[HeadroomKind] = ("rate",),
    seed: int = DEFAULT_SEED,
    jobs: int | None = None,
    solver: str = "highs",
    time_limit_s: float | None = None,
    backend: str = "local",
    address: str | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The study's ``data`` (see the module docstring) and its warnings. Raises InfeasibleError when no plan meets
    the SLOs at the nominal inputs (there is nothing to study)."""
    from planner.api.sweep import configuration
    from planner.optimize.sizing import size

    _check(draws, mode, rate_error_frac, rate_correlation, factor_sigma_scale, confidence, jobs, solver, time_limit_s)
    for kind in headroom:
        if kind not in HEADROOM_KINDS:
            raise InputError(f"--headroom {kind}: use rate, slo or rate,slo")
    names = [c.name for c in workload.classes]
    unc = catalog.engine_uncertainty.get(catalog.engine.id)
    warnings: list[str] = []
    if unc is None and factor_sigma_scale > 0:
        warnings.append(
            f"engine {catalog.engine.label} has no measured uncertainty in the catalog: the performance factors are "
            "not perturbed (only the rates are)"
        )
    points = draw_points(
        draws,
        names,
        unc,
        rate_error_frac=rate_error_frac,
        rate_correlation=rate_correlation,
        factor_sigma_scale=factor_sigma_scale,
        seed=seed,
    )
    nominal = size(workload, catalog, solver=solver, time_limit_s=time_limit_s, baselines=False)  # type: ignore[arg-type]
    shape, summary = configuration(nominal)
    # The nominal plan's own warnings (price basis, transferred factors), but those about baselines: none was sized.
    warnings += [w for w in nominal.warnings if w not in warnings and "co-located baseline" not in w]
    if unc is not None and factor_sigma_scale > 0:
        plan_gpus = sorted({p.gpu for p in nominal.plan.deployment.pools})
        other = [g for g in plan_gpus if unc.gpus and g not in unc.gpus]
        if other:
            warnings.append(
                f"the factor spread was measured on {', '.join(unc.gpus)} rows only: on {', '.join(other)} (in the "
                "plan) it is an assumption"
            )
        rows = unc.fitted_on.removeprefix("training split: ")
        refitted = [g for g in plan_gpus if rows not in catalog.efficiency[g].for_precision(workload.precision).fitted_on]
        if refitted:
            warnings.append(
                f"{', '.join(refitted)}: factors not fitted with the overheads the spread was measured for ({rows}); "
                "the spread is an assumption for them (a calibrate fit --serving --write overlay carries its own)"
            )

    def context(deployment: Deployment | None) -> _Context:
        return _Context(
            workload=workload,
            catalog=catalog,
            deployment=deployment,
            nominal_shape=shape,
            nominal_summary=summary,
            solver=solver,
            time_limit_s=time_limit_s,
        )

    def run(deployment: Deployment | None) -> list[dict[str, Any]]:
        return execute(
            points,
            _run_point,
            init=_init,
            init_args=(context(deployment),),
            jobs=jobs,
            backend=backend,
            address=address,
            progress=progress,
        )

    data: dict[str, Any] = {"mode": mode, "draws": draws, "nominal": _plan_doc(nominal)}
    fixed = run(nominal.plan.deployment)
    data["nominal"]["attainment"] = _attainment(fixed, names)
    data["nominal"]["latency"] = _latency(fixed, names)
    data["nominal"]["max_utilization_frac"] = _quantiles([r["max_utilization_frac"] for r in fixed])
    rows_out = [_csv_row(r, names, "evaluate") for r in fixed]
    if mode == "size":
        sized = run(None)
        ok = [r for r in sized if r["status"] == "ok"]
        configs: dict[str, int] = {}
        for r in ok:
            configs[r["configuration"]] = configs.get(r["configuration"], 0) + 1
        data["resized"] = {
            "feasible_draws": len(ok),
            "infeasible_draws": sum(1 for r in sized if r["status"] == "infeasible"),
            "error_draws": sum(1 for r in sized if r["status"] == "error"),
            "usd_per_month": _quantiles([r["usd_per_month"] for r in ok]) if ok else None,
            "num_gpus": _quantiles([r["num_gpus"] for r in ok]) if ok else None,
            "gpus_by_pool": {
                pool: _quantiles([r["gpus"].get(pool, 0) for r in ok]) for pool in sorted({k for r in ok for k in r["gpus"]})
            },
            "configuration_changed_frac": sum(1 for r in ok if r["configuration_changed"]) / draws,
            "plan_changed_frac": sum(1 for r in ok if r["plan_changed"]) / draws,
            "configurations": [
                {"configuration": k, "draws": v} for k, v in sorted(configs.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
        }
        rows_out = [{**a, **_csv_row(b, names, "size")} for a, b in zip(rows_out, sized, strict=True)]
    if confidence is not None:
        data["headroom"] = {
            kind: _headroom(kind, workload, catalog, nominal, fixed, names, confidence, run, solver, time_limit_s)
            for kind in headroom
        }
    data["rows"] = rows_out
    data["uncertainty"] = _uncertainty_doc(unc, factor_sigma_scale)
    data["notes"] = NOTES
    return data, warnings


NOTES = {
    "attainment": "a class attains its SLOs in a draw when its TTFT and TPOT at the SLO percentile meet the targets "
    "(with the workload's redundancy spares out, as planner check counts) and no pool it uses is saturated",
    "headroom_rate": "the smallest rate multiplier h >= 1 such that the plan sized for h x the forecast rates, with "
    "the nominal factors, attains every class's SLOs in at least the confidence share of the same draws",
    "headroom_slo": "the smallest h >= 1 such that the plan sized for every TTFT and TPOT target divided by h, with "
    "the nominal factors, attains the workload's own targets in at least the confidence share of the same draws",
    "factors": "one lognormal multiplier on prefill-phase step time (and the request's fixed latency) and one on "
    "decode-phase step time per draw, shared by every GPU (the spread is the engine-level fit error), correlated as "
    "the measured TTFT and TPOT log ratios are",
    "rates": "each class's rate x exp(F z), F = rate_error_frac, z = sqrt(rho) z_shared + sqrt(1 - rho) z_class",
}


def _uncertainty_doc(unc: TimeUncertainty | None, scale: float) -> dict[str, Any] | None:
    if unc is None:
        return None
    return {
        "ttft_log_sigma": unc.ttft_log_sigma,
        "tpot_log_sigma": unc.tpot_log_sigma,
        "correlation": unc.correlation,
        "prefill_log_sigma_used": scale * unc.ttft_log_sigma,
        "decode_log_sigma_used": scale * unc.tpot_log_sigma,
        "rows": unc.rows,
        "fitted_on": unc.fitted_on,
        "method": unc.method,
        "source": unc.source,
        "as_of": unc.as_of,
        "held_out": {
            "rows": unc.held_out_rows,
            "ttft_log_sigma": unc.held_out_ttft_log_sigma,
            "tpot_log_sigma": unc.held_out_tpot_log_sigma,
            "checked_on": unc.checked_on,
        },
    }


def _csv_row(r: dict[str, Any], names: Sequence[str], kind: str) -> dict[str, Any]:
    if kind == "evaluate":
        row: dict[str, Any] = {
            "draw": r["index"] + 1,
            "prefill_time_x": r["prefill_time_x"],
            "decode_time_x": r["decode_time_x"],
        }
        row.update({f"rate_x:{c}": r["rate_x"][c] for c in names})
        row["meets_slos"] = r["meets_slos"]
        for x in r["classes"]:
            row[f"meets_slo:{x['name']}"] = x["meets_slo"]
            row[f"ttft_at_slo_ms:{x['name']}"] = x["ttft_at_slo_ms"]
            row[f"tpot_at_slo_ms:{x['name']}"] = x["tpot_at_slo_ms"]
        row["max_utilization_frac"] = r["max_utilization_frac"]
        return row
    return {
        "resized_status": r["status"],
        "resized_usd_per_month": r.get("usd_per_month"),
        "resized_num_gpus": r.get("num_gpus"),
        "resized_configuration": r.get("configuration", r.get("message")),
        "resized_configuration_changed": r.get("configuration_changed"),
    }


def tightened_targets(workload: Workload, factor: float) -> Workload:
    """The workload with every class's TTFT and TPOT targets divided by ``factor`` (the SLO-margin search)."""
    return replace(
        workload,
        classes=tuple(
            replace(c, slo=replace(c.slo, ttft_s=c.slo.ttft_s / factor, tpot_s=c.slo.tpot_s / factor)) for c in workload.classes
        ),
    )


HeadroomKind = Literal["rate", "slo"]
HEADROOM_KINDS = ("rate", "slo")


def _headroom(
    kind: HeadroomKind,
    workload: Workload,
    catalog: Catalog,
    nominal: SizeResult,
    nominal_rows: list[dict[str, Any]],
    names: Sequence[str],
    confidence: float,
    run: Callable[[Deployment | None], list[dict[str, Any]]],
    solver: str,
    time_limit_s: float | None,
) -> dict[str, Any]:
    """Smallest ``h`` in [1, MAX_HEADROOM] whose plan holds the SLOs in ≥ confidence of the draws, the plan sized
    (nominal factors) for ``h ×`` the rates (``rate``) or for every target divided by ``h`` (``slo``), always
    evaluated against the workload's own targets: 1 if the nominal plan holds; else the grid until one holds, then
    bisection to HEADROOM_TOL. Attainment need not be monotone in ``h`` across plans of different shapes: the
    result is the smallest probe that held, with every probe listed."""
    from planner.optimize.sizing import size

    probes: list[dict[str, Any]] = []
    plans: dict[float, tuple[SizeResult, float]] = {}
    change = scaled_rates if kind == "rate" else tightened_targets

    def probe(h: float) -> bool | None:
        """True/False: the plan for h holds/fails; None: no plan for h meets the targets within the limits."""
        if h == 1.0:
            result, rows = nominal, nominal_rows
        else:
            try:
                result = size(change(workload, h), catalog, solver=solver, time_limit_s=time_limit_s, baselines=False)  # type: ignore[arg-type]
            except (InfeasibleError, InputError) as exc:  # InputError: a rate past what one class may size for
                probes.append({"multiplier": h, "status": "infeasible", "message": exc.message})
                return None
            rows = run(result.plan.deployment)
        frac = _attainment(rows, names)["overall_frac"]
        plans[h] = (result, frac)
        probes.append({"multiplier": h, "status": "ok", "attainment_frac": frac, **_plan_doc(result)})
        return bool(frac >= confidence)

    found: float | None = None
    lo = 1.0
    if probe(1.0):
        found = 1.0
    else:
        for h in HEADROOM_GRID:
            held = probe(h)
            if held is None:
                break
            if held:
                found = h
                break
            lo = h
        if found is not None:
            hi = found
            while hi - lo > HEADROOM_TOL:
                mid = float(f"{(lo + hi) / 2:.6g}")
                held = probe(mid)
                if held:
                    hi = mid
                else:
                    lo = mid  # a limit that leaves no plan at mid: the bracket keeps hi, which has one
            found = hi
    base = nominal.plan.evaluation.usd_per_month
    out: dict[str, Any] = {
        "kind": kind,
        "confidence": confidence,
        "meaning": NOTES[f"headroom_{kind}"],
        "multiplier": found,
        "probes": sorted(probes, key=lambda p: p["multiplier"]),
    }
    if found is None:
        ok = [p for p in probes if p["status"] == "ok"]
        best = max(ok, key=lambda p: (p["attainment_frac"], -p["multiplier"]))
        out["best_attainment_frac"] = best["attainment_frac"]
        out["best_multiplier"] = best["multiplier"]
        why = (
            " More replicas of the same GPUs and TP do not fix a draw whose single-request latency misses the target "
            "(a slow prefill or decode step): faster GPUs or a higher TP might (--headroom slo sizes for tighter targets, "
            "which picks them)"
            if kind == "rate"
            else ""
        )
        out["message"] = (
            f"no {kind} multiplier up to {max(p['multiplier'] for p in probes):g} (within the workload's limits) holds "
            f"the SLOs in {confidence:.0%} of the draws; the best is {best['attainment_frac']:.1%} at "
            f"{best['multiplier']:g}x.{why}"
        )
        return out
    result, frac = plans[found]
    out["attainment_frac"] = frac
    out["plan"] = _plan_doc(result)
    out["extra_usd_per_month"] = result.plan.evaluation.usd_per_month - base
    out["extra_frac"] = result.plan.evaluation.usd_per_month / base - 1.0
    return out


def _check(
    draws: int,
    mode: str,
    rate_error_frac: float,
    rate_correlation: float,
    factor_sigma_scale: float,
    confidence: float | None,
    jobs: int | None,
    solver: str,
    time_limit_s: float | None,
) -> None:
    if not 1 <= draws <= MAX_DRAWS:
        raise InputError(f"--draws {draws}: must be between 1 and {MAX_DRAWS:,}")
    if mode not in ("evaluate", "size"):
        raise InputError(f"--mode {mode}: use evaluate or size")
    if not (math.isfinite(rate_error_frac) and 0 <= rate_error_frac <= 5):
        raise InputError(f"--rate-error-frac {rate_error_frac:g}: must be between 0 and 5 (one-sigma of the log rate)")
    if not (math.isfinite(rate_correlation) and 0 <= rate_correlation <= 1):
        raise InputError(f"--rate-correlation {rate_correlation:g}: must be between 0 and 1")
    if not (math.isfinite(factor_sigma_scale) and 0 <= factor_sigma_scale <= 10):
        raise InputError(f"--factor-sigma-scale {factor_sigma_scale:g}: must be between 0 and 10")
    if confidence is not None and not (math.isfinite(confidence) and 0 < confidence < 1):
        raise InputError(f"--confidence {confidence:g}: must be strictly between 0 and 1")
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        raise InputError(f"--jobs {jobs}: must be between 1 and {MAX_JOBS} (it is capped at the CPU count)")
    if solver not in ("highs", "cbc"):
        raise InputError(f"--solver {solver}: use highs or cbc")
    if time_limit_s is not None and not time_limit_s > 0:
        raise InputError("--time-limit-s must be positive")


# ------------------------------------------------------------------------------------------------ options / run


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyOptions:
    """Everything ``planner study robust`` takes, but how the result is shown."""

    workload_file: Path
    draws: int = 200
    mode: str = "evaluate"  # evaluate | size
    rate_error_frac: float = 0.0  # one-sigma of each class's log rate (forecast error)
    rate_correlation: float = 1.0  # 1: one error for every class; 0: independent
    factor_sigma_scale: float = 1.0  # times the engine's measured spread (0: no factor uncertainty)
    confidence: float | None = 0.95  # headroom search (None: none)
    headroom: str = "rate"  # rate, slo or rate,slo: which headroom searches to run
    seed: int = DEFAULT_SEED
    jobs: int | None = None
    backend: str = "local"  # local (worker processes) or ray (Ray tasks; the planner[ray] extra)
    address: str | None = None  # a Ray cluster for backend ray (None: a local instance)
    progress: Progress | None = None  # progress(done, total) after each draw of each pass (see planner.api.executor)
    solver: str = "highs"
    time_limit_s: float | None = None  # of each sizing run
    engine: str | None = None
    catalog_dirs: Sequence[Path] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyRun:
    """What :func:`run_study` found: ``inputs`` and ``data`` are the JSON envelope's objects."""

    options: StudyOptions
    source: InputSource
    spec: WorkloadSpec
    catalog: Catalog
    inputs: dict[str, Any]
    data: dict[str, Any]
    warnings: tuple[str, ...]
    files_read: tuple[Path, ...]


def parse_headroom(text: str) -> tuple[HeadroomKind, ...]:
    """``--headroom``: ``rate``, ``slo`` or both, comma-separated (each once, in that order)."""
    parts = {p.strip() for p in text.split(",") if p.strip()}
    bad = sorted(parts - set(HEADROOM_KINDS))
    if bad or not parts:
        raise InputError(f"--headroom {text!r}: use rate, slo or rate,slo")
    return tuple(k for k in ("rate", "slo") if k in parts)  # type: ignore[misc]


def run_study(options: StudyOptions) -> StudyRun:
    """``planner study robust``: read the workload once, select its catalog and engine, run :func:`study_robust`."""
    from planner.io.sources import reading_once

    with reading_once():
        return _run_study(options)


def _run_study(o: StudyOptions) -> StudyRun:
    from planner.api.inputs import load_workload_spec, resolve_workload, workload_catalog
    from planner.io.sources import read_source
    from planner.report.engine import engine_doc

    _check(
        o.draws, o.mode, o.rate_error_frac, o.rate_correlation, o.factor_sigma_scale, o.confidence, o.jobs, o.solver,
        o.time_limit_s,
    )  # fmt: skip
    parse_headroom(o.headroom)
    path = o.workload_file
    spec = load_workload_spec(path)
    source = read_source(path)
    catalog = workload_catalog(spec, path, o.catalog_dirs, o.engine)
    workload = resolve_workload(spec, catalog, str(path))
    data, warnings = study_robust(
        workload,
        catalog,
        draws=o.draws,
        mode=o.mode,  # type: ignore[arg-type]
        rate_error_frac=o.rate_error_frac,
        rate_correlation=o.rate_correlation,
        factor_sigma_scale=o.factor_sigma_scale,
        confidence=o.confidence,
        headroom=parse_headroom(o.headroom),
        seed=o.seed,
        jobs=o.jobs,
        solver=o.solver,
        time_limit_s=o.time_limit_s,
        backend=o.backend,
        address=o.address,
        progress=o.progress,
    )
    inputs: dict[str, Any] = {
        "workload_file": str(path),
        "workload_sha256": source.sha256,
        "draws": o.draws,
        "mode": o.mode,
        "rate_error_frac": o.rate_error_frac,
        "rate_correlation": o.rate_correlation,
        "factor_sigma_scale": o.factor_sigma_scale,
        "confidence": o.confidence,
        "headroom": list(parse_headroom(o.headroom)),
        "seed": o.seed,
        "solver": o.solver,
        "engine": engine_doc(catalog.engine),
    }
    return StudyRun(
        options=o,
        source=source,
        spec=spec,
        catalog=catalog,
        inputs=inputs,
        data=data,
        warnings=tuple(warnings),
        files_read=(path,),
    )
