"""Data and table of ``planner simulate`` (and the ``verification`` block of ``planner size --verify``).

Simulated figures sit beside the analytic prediction of the same plan with the relative difference
``(analytic − simulated)/simulated``. TPOT is per request (``(done − first token)/(output − 1)``);
the analytic TPOT at the SLO percentile is the step time at the occupancy quantile.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.table import Table

from planner.sim import ClassMetrics, Dist, Simulation
from planner.units import s_to_ms


def _dist_ms(d: Dist) -> dict[str, float]:
    return {"p50": s_to_ms(d.p50), "p90": s_to_ms(d.p90), "p99": s_to_ms(d.p99), "at_slo_pct": s_to_ms(d.at_slo)}


def rel_diff(analytic: float, simulated: float) -> float | None:
    if not (math.isfinite(analytic) and math.isfinite(simulated)) or simulated == 0:
        return None
    return (analytic - simulated) / simulated


def _pair(analytic_s: float, simulated_s: float) -> dict[str, Any]:
    return {"analytic": s_to_ms(analytic_s), "simulated": s_to_ms(simulated_s), "rel_diff": rel_diff(analytic_s, simulated_s)}


def _class_row(c: ClassMetrics) -> dict[str, Any]:
    return {
        "name": c.name,
        "num_requests": c.num_requests,
        "completed": c.completed,
        "ttft_ms": _dist_ms(c.ttft),
        "tpot_ms": _dist_ms(c.tpot),
        "e2e_ms": _dist_ms(c.e2e),
        "ttft_target_ms": s_to_ms(c.ttft_target_s),
        "tpot_target_ms": s_to_ms(c.tpot_target_s),
        "ttft_slo_percentile": c.ttft_quantile,
        "tpot_slo_percentile": c.tpot_quantile,
        "ttft_attainment_frac": c.ttft_attainment_frac,
        "tpot_attainment_frac": c.tpot_attainment_frac,
        "slo_attainment_frac": c.slo_attainment_frac,
        "goodput_rps": c.goodput_rps,
        "meets_slo": c.meets_slo,
    }


def analytic_data(sim: Simulation) -> dict[str, Any]:
    ev = sim.analytic
    by_class = []
    for a, s in zip(ev.classes, sim.classes, strict=True):
        by_class.append(
            {
                "name": a.name,
                "ttft_p50_ms": _pair(a.ttft_p50_s, s.ttft.p50),
                "ttft_at_slo_pct_ms": _pair(a.ttft_at_slo_s, s.ttft.at_slo),
                "tpot_p50_ms": _pair(a.tpot_p50_s, s.tpot.p50),
                "tpot_at_slo_pct_ms": _pair(a.tpot_at_slo_s, s.tpot.at_slo),
                "ttft_slo_percentile": a.ttft_quantile,
                "tpot_slo_percentile": a.tpot_quantile,
                "meets_slo": a.meets_slo,
            }
        )
    return {
        "ttft_p50_ms": max(s_to_ms(c.ttft_p50_s) for c in ev.classes),
        "ttft_at_slo_ms": max(s_to_ms(c.ttft_at_slo_s) for c in ev.classes),
        "tpot_p50_ms": max(s_to_ms(c.tpot_p50_s) for c in ev.classes),
        "tpot_at_slo_ms": max(s_to_ms(c.tpot_at_slo_s) for c in ev.classes),
        "meets_slo": ev.meets_slos,
        "by_class": by_class,
        "note": "*_at_slo_ms are at each class's SLO percentile; rel_diff = (analytic - simulated)/simulated",
    }


def pool_rows(sim: Simulation) -> list[dict[str, Any]]:
    rows = []
    oos = sim.options.out_of_service or 0
    analytic = {pr.pool.key: pr for pr in sim.analytic.pools}
    for pool, st in zip(sim.pools, sim.result.pools, strict=True):
        pr = analytic[pool.key]
        in_service = pool.replicas - oos
        # The core divides busy time by every replica; the simulation runs the in-service ones.
        a_util = min(1.0, pr.utilization_frac * pool.replicas / in_service) if in_service > 0 else math.inf
        row: dict[str, Any] = {
            "key": pool.key,
            "role": pool.role,
            "gpu": pool.gpu,
            "tp": pool.tp,
            **pool.layout_keys(),
            "replicas": pool.replicas,
            "replicas_in_service": in_service,
            "max_batch": pool.max_batch,
            "token_budget": pool.token_budget,
            "link": pool.link,
            "busy_frac": st.utilization_frac,
            "queue_mean": st.mean_queue,
            "queue_max": st.queue_max,
            "iterations": st.iterations,
            "saturated": pool.key in sim.result.saturated_pools,
        }
        if pool.role == "prefill":
            sim_util = st.utilization_frac
        else:
            row["mean_batch"] = st.mean_batch
            sim_util = st.mean_batch / pool.max_batch
        row["utilization_frac"] = sim_util
        row["analytic_utilization_frac"] = a_util
        row["utilization_rel_diff"] = rel_diff(a_util, sim_util)
        rows.append(row)
    return rows


def simulate_data(sim: Simulation) -> dict[str, Any]:
    o = sim.overall
    res = sim.result
    opt = sim.options
    return {
        "ttft_ms": _dist_ms(o.ttft),
        "tpot_ms": _dist_ms(o.tpot),
        "e2e_ms": _dist_ms(o.e2e),
        "slo_attainment_frac": o.slo_attainment_frac,
        "ttft_attainment_frac": o.ttft_attainment_frac,
        "tpot_attainment_frac": o.tpot_attainment_frac,
        "goodput_rps": o.goodput_rps,
        "num_requests": o.num_requests,
        "completed": o.completed,
        "meets_slo": all(c.meets_slo for c in sim.classes if c.num_requests) and not res.saturated,
        "saturated": res.saturated,
        "stop_reason": res.stop_reason,
        "saturated_pools": list(res.saturated_pools),
        "classes": [_class_row(c) for c in sim.classes],
        "pools": pool_rows(sim),
        "analytic": analytic_data(sim),
        "simulation": {
            "engine": "heapq event loop",
            "source": sim.source,
            "requests": len(res.requests),
            "warmup_frac": opt.warmup_frac,
            "seed": opt.seed,
            "routing": opt.routing,
            "prefill_token_budget": opt.prefill_token_budget,
            "out_of_service": opt.out_of_service,
            "length_jitter": opt.length_jitter,
            "events": res.events,
            "simulated_s": res.end_s,
            "window_s": [res.window_s[0], res.window_s[1]],
            "time_cap_s": opt.time_cap_s,
            "queue_cap": opt.queue_cap,
        },
    }


def verification_data(sim: Simulation) -> dict[str, Any]:
    """The compact block ``planner size --verify`` adds."""
    return {
        "slo_attainment_frac": sim.overall.slo_attainment_frac,
        "meets_slo": all(c.meets_slo for c in sim.classes if c.num_requests) and not sim.result.saturated,
        "saturated": sim.result.saturated,
        "requests": len(sim.result.requests),
        "seed": sim.options.seed,
        "routing": sim.options.routing,
        "out_of_service": sim.options.out_of_service,
        "by_class": [
            {
                "name": c.name,
                "slo_attainment_frac": c.slo_attainment_frac,
                "ttft_attainment_frac": c.ttft_attainment_frac,
                "tpot_attainment_frac": c.tpot_attainment_frac,
                "ttft_at_slo_pct_ms": s_to_ms(c.ttft.at_slo),
                "tpot_at_slo_pct_ms": s_to_ms(c.tpot.at_slo),
                "ttft_p99_ms": s_to_ms(c.ttft.p99),
                "tpot_p99_ms": s_to_ms(c.tpot.p99),
                "meets_slo": c.meets_slo,
            }
            for c in sim.classes
        ],
    }


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None or not math.isfinite(v):
        return "unbounded"
    return f"{v:,.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.1f}%"


def simulate_table(data: dict[str, Any]) -> Group:
    head = Table(title="Simulated latency (all measured requests)", show_header=True)
    for col in ("metric", "p50", "p90", "p99"):
        head.add_column(col, justify="right" if col != "metric" else "left")
    for name in ("ttft_ms", "tpot_ms", "e2e_ms"):
        d = data[name]
        head.add_row(name, _fmt(d["p50"]), _fmt(d["p90"]), _fmt(d["p99"]))
    cmp = Table(title="Analytic vs simulated, per class (ms; pct = the class's SLO percentile)")
    for col in ("class", "metric", "analytic", "simulated", "diff", "target"):
        cmp.add_column(col, justify="left" if col in ("class", "metric") else "right")
    targets = {c["name"]: c for c in data["classes"]}
    for row in data["analytic"]["by_class"]:
        c = targets[row["name"]]
        for metric, target in (
            ("ttft_p50_ms", None),
            ("ttft_at_slo_pct_ms", c["ttft_target_ms"]),
            ("tpot_p50_ms", None),
            ("tpot_at_slo_pct_ms", c["tpot_target_ms"]),
        ):
            pair = row[metric]
            cmp.add_row(
                row["name"],
                metric.replace("_ms", "").replace("at_slo_pct", f"p{c['ttft_slo_percentile'] * 100:g}"),
                _fmt(pair["analytic"]),
                _fmt(pair["simulated"]),
                _pct(pair["rel_diff"]),
                "" if target is None else _fmt(target, 0),
            )
    att = Table(title="SLO attainment")
    for col in ("class", "requests", "TTFT ok", "TPOT ok", "both", "goodput req/s", "meets SLO"):
        att.add_column(col, justify="left" if col == "class" else "right")
    for c in data["classes"]:
        att.add_row(
            c["name"],
            f"{c['num_requests']:,}",
            f"{c['ttft_attainment_frac']:.4f}",
            f"{c['tpot_attainment_frac']:.4f}",
            f"{c['slo_attainment_frac']:.4f}",
            _fmt(c["goodput_rps"], 2),
            "yes" if c["meets_slo"] else "NO",
        )
    pools = Table(title="Pools (utilization: prefill busy share, decode batch-slot share)")
    for col in ("pool", "in service", "util sim", "util analytic", "mean queue", "max queue", "saturated"):
        pools.add_column(col, justify="left" if col == "pool" else "right")
    for p in data["pools"]:
        pools.add_row(
            p["key"],
            f"{p['replicas_in_service']}/{p['replicas']}",
            f"{p['utilization_frac']:.3f}",
            _fmt(p["analytic_utilization_frac"], 3),
            f"{p['queue_mean']:.2f}",
            str(p["queue_max"]),
            "YES" if p["saturated"] else "no",
        )
    parts: list[Any] = [head, cmp, att, pools]
    sim = data["simulation"]
    status = "SATURATED: " + (data["stop_reason"] or "queue grows without bound") if data["saturated"] else "stable"
    parts.append(
        f"{sim['requests']:,} requests ({sim['source']}, seed {sim['seed']}, routing {sim['routing']}, "
        f"warm-up {sim['warmup_frac']:g}), {sim['events']:,} events, {sim['simulated_s']:,.1f} s simulated; {status}"
    )
    return Group(*parts)
