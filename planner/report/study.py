"""Tables, markdown and CSV rows of ``planner study robust``."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _ms(q: dict[str, Any] | None) -> str:
    if not q:
        return "-"
    return " / ".join("inf" if v is None else f"{v:,.1f}" for v in (q["p5"], q["p50"], q["p95"]))


def _count(q: dict[str, Any]) -> str:
    return " / ".join(f"{v:g}" for v in (q["p5"], q["p50"], q["p95"]))


def _usd(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def summary_lines(data: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    """The study in a few lines: what was drawn, attainment of the nominal plan, the headroom and its cost."""
    nominal = data["nominal"]
    unc = data.get("uncertainty")
    lines = [f"plan at the nominal inputs: {nominal['configuration']}; {_usd(nominal['usd_per_month'])} USD/month"]
    drawn = f"{data['draws']} draws (seed {inputs['seed']}): rates x exp({inputs['rate_error_frac']:g} z)"
    if unc is not None and (unc["prefill_log_sigma_used"] > 0 or unc["decode_log_sigma_used"] > 0):
        drawn += (
            f", prefill time x exp({unc['prefill_log_sigma_used']:.3g} z), decode time x "
            f"exp({unc['decode_log_sigma_used']:.3g} z), correlation {unc['correlation']:.2f}"
        )
    lines.append(drawn)
    att = nominal["attainment"]
    lines.append(
        f"SLO attainment of the nominal plan: {att['overall_frac']:.1%} of draws"
        + (f" ({att['saturated_draws']} draws saturate a pool)" if att["saturated_draws"] else "")
    )
    u = nominal["max_utilization_frac"]
    lines.append(f"busiest pool's utilization over the draws: p5 {u['p5']:.0%}, p50 {u['p50']:.0%}, p95 {u['p95']:.0%}")
    for kind, hr in (data.get("headroom") or {}).items():
        what = "the forecast rates" if kind == "rate" else "tighter targets (each divided by it)"
        if hr["multiplier"] is None:
            lines.append(f"{kind} headroom: {hr['message']}")
        else:
            plan = hr["plan"]
            lines.append(
                f"{kind} headroom at {hr['confidence']:.0%} confidence: size for {hr['multiplier']:.3g} x {what} "
                f"-> {plan['configuration']}, {_usd(plan['usd_per_month'])} USD/month "
                f"({hr['extra_frac']:+.1%} vs nominal), attainment {hr['attainment_frac']:.1%}"
            )
        lines.append(f"  ({kind} headroom: {hr['meaning']})")
    rs = data.get("resized")
    if rs is not None:
        cost = rs["usd_per_month"]
        lines.append(
            f"re-sized per draw: {rs['feasible_draws']} feasible, {rs['infeasible_draws']} infeasible; USD/month "
            + (
                "-"
                if cost is None
                else f"p5 {_usd(cost['p5'])}, p50 {_usd(cost['p50'])}, p95 {_usd(cost['p95'])}, mean {_usd(cost['mean'])}"
            )
            + f"; configuration differs from nominal in {rs['configuration_changed_frac']:.1%} of draws"
            + f" (replica counts in {rs['plan_changed_frac']:.1%})"
        )
    if unc is not None:
        lines.append(f"factor spread fitted on {unc['fitted_on']}")
    return lines


def study_table(data: dict[str, Any], inputs: dict[str, Any]) -> Group:
    parts: list[Any] = [Text(line) for line in summary_lines(data, inputs)]
    t = Table(title="per class: attainment and latency at the SLO percentile over the draws (p5 / p50 / p95, ms)")
    for col in ("class", "attainment", "TTFT at SLO", "TPOT at SLO"):
        t.add_column(col, justify="left" if col == "class" else "right")
    nominal = data["nominal"]
    for name, frac in nominal["attainment"]["by_class"].items():
        lat = nominal["latency"][name]
        t.add_row(name, f"{frac:.1%}", _ms(lat["ttft_at_slo_ms"]), _ms(lat["tpot_at_slo_ms"]))
    parts.append(t)
    for kind, hr in (data.get("headroom") or {}).items():
        sized = "h x the forecast rates" if kind == "rate" else "every target / h"
        p = Table(title=f"{kind} headroom search (plans sized for {sized}, evaluated on the same draws)")
        for col in ("h", "attainment", "USD/month", "configuration"):
            p.add_column(col, justify="left" if col == "configuration" else "right")
        for probe in hr["probes"]:
            ok = probe["status"] == "ok"
            p.add_row(
                f"{probe['multiplier']:.4g}",
                f"{probe['attainment_frac']:.1%}" if ok else "-",
                _usd(probe.get("usd_per_month")),
                probe["configuration"] if ok else probe["message"],
            )
        parts.append(p)
    rs = data.get("resized")
    if rs is not None and rs["gpus_by_pool"]:
        g = Table(title="GPUs of the re-sized draws (p5 / p50 / p95; 0 where a draw's plan has no such pool)")
        g.add_column("pool")
        g.add_column("GPUs", justify="right")
        g.add_row("all", _count(rs["num_gpus"]))
        for pool, q in rs["gpus_by_pool"].items():
            g.add_row(pool, _count(q))
        parts.append(g)
    if rs is not None and rs["configurations"]:
        c = Table(title="configurations of the re-sized draws")
        c.add_column("draws", justify="right")
        c.add_column("configuration")
        for row in rs["configurations"]:
            c.add_row(str(row["draws"]), row["configuration"])
        parts.append(c)
    return Group(*parts)


def study_markdown(data: dict[str, Any], inputs: dict[str, Any], line: str) -> str:
    out = [f"# planner study robust\n\n{line}\n"]
    out += [f"- {s}" for s in summary_lines(data, inputs)]
    out.append("\n| class | attainment | TTFT at SLO p5 / p50 / p95 (ms) | TPOT at SLO p5 / p50 / p95 (ms) |")
    out.append("|---|---:|---:|---:|")
    nominal = data["nominal"]
    for name, frac in nominal["attainment"]["by_class"].items():
        lat = nominal["latency"][name]
        out.append(f"| {name} | {frac:.1%} | {_ms(lat['ttft_at_slo_ms'])} | {_ms(lat['tpot_at_slo_ms'])} |")
    for kind, hr in (data.get("headroom") or {}).items():
        out.append(f"\n{kind} headroom search:\n\n| h | attainment | USD/month | configuration |")
        out.append("|---:|---:|---:|---|")
        for probe in hr["probes"]:
            ok = probe["status"] == "ok"
            att = f"{probe['attainment_frac']:.1%}" if ok else "-"
            what = probe["configuration"] if ok else probe["message"]
            out.append(f"| {probe['multiplier']:.4g} | {att} | {_usd(probe.get('usd_per_month'))} | {what} |")
    return "\n".join(out) + "\n"


def csv_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per draw: its multipliers, whether the nominal plan attains each class's SLOs, the latencies, and in
    size mode the re-sized plan."""
    return [dict(r) for r in data["rows"]]
