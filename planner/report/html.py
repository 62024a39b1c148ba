"""Self-contained HTML reports: matplotlib charts rendered to inline SVG, tables, and the JSON result.

The only module that imports matplotlib. The page needs no network access: charts are inline SVG
(text kept as text, so titles and axis labels are searchable), styles are inline, and the result
document is embedded as ``<script type="application/json" id="planner-result">`` (the report's
numbers are the JSON's; ``<``, ``>`` and ``&`` in its strings as ``\\u003c``, ``\\u003e``, ``\\u0026``).
Rendering is deterministic: a fixed SVG hash salt, no dates.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from planner.report.engine import engine_text, label_of
from planner.report.envelope import to_json
from planner.report.sweep import crossing_lines
from planner.units import HOURS_PER_MONTH

_RC = {
    "svg.hashsalt": "planner-report",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.alpha": 0.3,
    "figure.dpi": 72.0,
}
# Pools get colours of their own (Paul Tol's muted scheme, then four more), one per distinct pool on the page,
# the same in every chart; past 13 pools the colours repeat with a hatch. Everything else (latency percentiles,
# targets, sweep series) is drawn in greys with distinct markers and dashes, so no colour means two things.
_POOL_COLORS = (
    "#332288",
    "#88ccee",
    "#44aa99",
    "#117733",
    "#999933",
    "#ddcc77",
    "#cc6677",
    "#882255",
    "#aa4499",
    "#ee7733",
    "#0077bb",
    "#ee3377",
    "#009988",
)
_POOL_HATCHES = ("", "//", "..", "xx")
_GREYS = ("#000000", "#555555", "#8c8c8c", "#bdbdbd")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_DASHES = ("-", "--", "-.", ":")
_LINK_STYLE = ("#bdbdbd", "\\\\")  # KV link ports in the cost bars: not a pool
_NO_PLAN = "no plan (infeasible): marked on the axis, no cost"

Chart = tuple[str, str, str]  # (id, caption, inline svg)
PoolStyles = dict[str, tuple[str, str]]  # pool label -> (colour, hatch)


@dataclass(frozen=True)
class Plot:
    """A chart before rendering: its id, caption, drawing function and size (inches); :func:`figure_of` draws it
    into a matplotlib figure (tests inspect its geometry), :func:`render` makes the inline SVG."""

    chart_id: str
    caption: str
    draw: Callable[[Any], None]
    size: tuple[float, float] = (7.5, 3.2)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _usd_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def figure_of(plot: Plot) -> Any:
    """The plot drawn into a new matplotlib figure (constrained layout: axes, labels and legends do not overlap),
    under the report's style; the caller closes it."""
    plt = _plt()
    with plt.rc_context(_RC):
        fig = plt.figure(figsize=plot.size, layout="constrained")
        plot.draw(fig)
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if "USD" in axis.get_label_text():
                    _usd_axis(axis)
        fig.canvas.draw()
    return fig


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    with _plt().rc_context(_RC):
        meta = {"Date": None, "Creator": None, "Format": None, "Type": None}
        fig.savefig(buf, format="svg", metadata=meta, bbox_inches="tight")
    _plt().close(fig)
    text = buf.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return text.strip()


def render(plot: Plot) -> Chart:
    return plot.chart_id, plot.caption, _scope_ids(_svg(figure_of(plot)), plot.chart_id)


def _scope_ids(svg: str, prefix: str) -> str:
    """Matplotlib numbers its element ids per figure (figure_1, axes_1, ...): prefix them with the
    chart's id, and every reference to them, so ids stay unique across the page's charts."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)


def _pool_label(p: dict[str, Any]) -> str:
    return f"{p['role']} {p['replicas']}x TP{p['tp']} {p['gpu']}"


def pool_styles(data: dict[str, Any]) -> PoolStyles:
    """One (colour, hatch) per distinct pool of the plan and its feasible baselines, in the order they appear."""
    labels: list[str] = []
    for pools in [data["pools"], *(b["pools"] for b in data["baselines"] if b["feasible"])]:
        labels += [label for label in map(_pool_label, pools) if label not in labels]
    n = len(_POOL_COLORS)
    return {label: (_POOL_COLORS[i % n], _POOL_HATCHES[(i // n) % len(_POOL_HATCHES)]) for i, label in enumerate(labels)}


def _legend_outside(fig: Any, ax: Any, handles: Sequence[Any] | None = None, labels: Sequence[str] | None = None) -> None:
    """The legend beside the plot area (right of every axes, twin axes included), never over the data."""
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, frameon=False)


def _legend_below(fig: Any, ax: Any) -> None:
    """One legend under a row of axes that share their series, outside every plot area."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=7, frameon=False)


def _mark_no_plan(ax: Any, xs: Sequence[float], label: str | None = _NO_PLAN) -> None:
    """Points with no plan: an x on the x axis (axes coordinates, so never a value of the y axis) and a light grey
    band through the plot, left out of every line."""
    if not xs:
        return
    for x in xs:
        ax.axvline(x, color=_GREYS[3], alpha=0.35, linewidth=7, gid="no-plan-line")
    ax.plot(
        list(xs),
        [0.0] * len(xs),
        "x",
        color=_GREYS[0],
        markersize=9,
        markeredgewidth=2,
        transform=ax.get_xaxis_transform(),
        clip_on=False,
        zorder=5,
        label=label,
        gid="no-plan",
    )


# ---------------------------------------------------------------------------------------------
# planner size


def _cost_plot(data: dict[str, Any], styles: PoolStyles) -> Plot:
    rows: list[tuple[str, list[tuple[str, float]]]] = [
        ("plan", [(_pool_label(p), p["usd_per_hour"] * HOURS_PER_MONTH) for p in data["pools"]])
    ]
    link_usd = sum(lk["usd_per_hour"] for lk in data["links"]) * HOURS_PER_MONTH
    if link_usd > 0:
        rows[0][1].append(("KV link ports", link_usd))
    for b in data["baselines"]:
        if b["feasible"]:
            rows.append((b["name"], [(_pool_label(p), p["usd_per_hour"] * HOURS_PER_MONTH) for p in b["pools"]]))

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        drawn: set[str] = set()
        for y, (_, parts) in enumerate(rows):
            left = 0.0
            for name, usd in parts:
                color, hatch = styles.get(name, _LINK_STYLE)
                ax.barh(
                    y,
                    usd,
                    left=left,
                    color=color,
                    hatch=hatch or None,
                    edgecolor="white",
                    label=name if name not in drawn else None,
                )
                drawn.add(name)
                left += usd
            ax.text(left, y, f" {left:,.0f}", va="center", fontsize=8)
        ax.set_yticks(range(len(rows)), [r[0] for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("cost (USD/month)")
        ax.set_title("Cost per month by pool: plan against each baseline")
        ax.margins(x=0.18)
        _legend_outside(fig, ax)

    return Plot("chart-cost", "Cost per month by pool against each baseline (USD/month)", draw, (8.5, 0.6 * len(rows) + 1.6))


def _pool_plot(data: dict[str, Any], styles: PoolStyles) -> Plot:
    pools = data["pools"]

    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        labels = [_pool_label(p) for p in pools]
        ys = range(len(pools))
        colors = [styles[label][0] for label in labels]
        hatches = [styles[label][1] or None for label in labels]
        ax1.barh(ys, [p["num_gpus"] for p in pools], color=colors, hatch=hatches, edgecolor="white")
        for y, p in zip(ys, pools, strict=True):
            ax1.text(p["num_gpus"], y, f" {p['num_gpus']}", va="center", fontsize=8)
        ax1.set_yticks(ys, labels)
        ax1.invert_yaxis()
        ax1.set_xlabel("GPUs (count)")
        ax1.set_title("GPU count per pool")
        ax1.margins(x=0.2)
        ax2.barh(ys, [100 * p["utilization_frac"] for p in pools], color=colors, hatch=hatches, edgecolor="white")
        for y, p in zip(ys, pools, strict=True):
            ax2.text(100 * p["utilization_frac"], y, f" {100 * p['utilization_frac']:.0f}%", va="center", fontsize=8)
        ax2.set_yticks(ys, [])
        ax2.invert_yaxis()
        ax2.set_xlim(0, 110)
        ax2.set_xlabel("utilization (%)")
        ax2.set_title("Utilization per pool")

    return Plot("chart-pools", "GPU count (GPUs) and utilization (%) per pool", draw, (7.5, 0.45 * len(pools) + 1.6))


def _target_line(ax: Any, x: float, target: float) -> None:
    """An SLO target over one group of bars, its value written inside the plot area above the line."""
    ax.hlines(target, x - 0.45, x + 0.45, colors=_GREYS[0], linestyles="dashed", label="SLO target")
    ax.text(x - 0.45, target, f"target {target:g} ms", fontsize=7, va="bottom", ha="left")


def _latency_plot(data: dict[str, Any]) -> Plot:
    classes = data["predicted"]["by_class"]

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, 2)
        for ax, metric in zip(axes, ("ttft", "tpot"), strict=True):
            xs = range(len(classes))
            w = 0.38
            p50 = [c[f"{metric}_p50_ms"] for c in classes]
            at = [c[f"{metric}_at_slo_pct_ms"] for c in classes]
            ax.bar([x - w / 2 for x in xs], p50, w, label="p50", color=_GREYS[3], edgecolor=_GREYS[1])
            ax.bar([x + w / 2 for x in xs], at, w, label="at SLO percentile", color=_GREYS[1])
            targets = [c[f"{metric}_target_ms"] for c in classes]
            for x, t in zip(xs, targets, strict=True):
                _target_line(ax, x, t)
            ax.set_ylim(0, 1.15 * max([*p50, *at, *targets]))
            ax.set_xticks(list(xs), [f"{c['name']} (p{100 * c[f'{metric}_slo_percentile']:g})" for c in classes])
            ax.set_ylabel(f"{metric.upper()} (ms)")
            ax.set_title(f"Predicted {metric.upper()} against the SLO")
        _legend_below(fig, axes[0])

    return Plot("chart-latency", "Predicted TTFT and TPOT percentiles against the SLO (ms)", draw, (7.5, 3.4))


def _capacity_plot(curve: Sequence[dict[str, Any]]) -> Plot:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        ok = [p for p in curve if p["status"] == "ok"]
        ax.plot([p["rate_rps"] for p in ok], [p["usd_per_month"] for p in ok], "o-", color=_GREYS[0], label="cost")
        ax.set_xlabel("arrival rate (requests/s)")
        ax.set_ylabel("cost (USD/month)")
        ax2 = ax.twinx()
        ax2.plot([p["rate_rps"] for p in ok], [p["num_gpus"] for p in ok], "s--", color=_GREYS[2], label="GPUs")
        ax2.set_ylabel("GPUs (count)")
        ax2.grid(False)
        _mark_no_plan(ax, [p["rate_rps"] for p in curve if p["status"] != "ok"])
        ax.set_ylim(bottom=0)
        ax2.set_ylim(bottom=0)
        ax.set_title("Capacity curve: cost and GPUs against arrival rate")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        _legend_outside(fig, ax, h1 + h2, l1 + l2)

    return Plot("chart-capacity", "Capacity curve: cost (USD/month) and GPUs against arrival rate (requests/s)", draw, (8.5, 3.2))


def _series_style(i: int, n: int) -> dict[str, Any]:
    """The i-th of n overlapping series: its own grey, marker and dashes, and a marker a size smaller than the one
    before, so series drawn on the same points show as concentric markers (the first, largest, at the back)."""
    grey = _GREYS[min(i, len(_GREYS) - 1)] if n <= len(_GREYS) else _GREYS[i % len(_GREYS)]
    return {
        "color": grey,
        "marker": _MARKERS[i % len(_MARKERS)],
        "linestyle": _DASHES[i % len(_DASHES)],
        "markersize": max(10.0 - 2.0 * i, 3.0),
        "zorder": 2 + i,
    }


def _pareto_plot(grid: Sequence[dict[str, Any]], who: str, note: str) -> Plot:
    tpots = sorted({p["tpot_target_ms"] for p in grid})

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        for i, t in enumerate(tpots):
            pts = [p for p in grid if p["tpot_target_ms"] == t and p["status"] == "ok"]
            ax.plot(
                [p["ttft_target_ms"] for p in pts],
                [p["usd_per_month"] for p in pts],
                label=f"TPOT target {t:g} ms",
                **_series_style(i, len(tpots)),
            )
        front = [p for p in grid if p.get("on_front")]
        if front:
            ax.plot(
                [p["ttft_target_ms"] for p in front],
                [p["usd_per_month"] for p in front],
                "o",
                markersize=15,
                markerfacecolor="none",
                markeredgecolor=_GREYS[0],
                markeredgewidth=1.5,
                label="Pareto front",
                zorder=10,
            )
        _mark_no_plan(ax, sorted({p["ttft_target_ms"] for p in grid if p["status"] != "ok"}))
        ax.set_xlabel(f"TTFT target (ms, class {who})")
        ax.set_ylabel("cost (USD/month)")
        ax.set_ylim(bottom=0)
        title = "Pareto front: cost against the TTFT and TPOT targets"
        ax.set_title(title + (f" ({note})" if note else ""))
        _legend_outside(fig, ax)

    return Plot(
        "chart-pareto",
        "Pareto front of cost (USD/month) against the TTFT and TPOT targets (ms); series on the same point show as "
        "concentric markers",
        draw,
        (8.5, 3.4),
    )


def _simulation_plot(verification: dict[str, Any], predicted: dict[str, Any]) -> Plot:
    classes = verification["by_class"]
    pred = {c["name"]: c for c in predicted["by_class"]}

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, 3)
        xs = range(len(classes))
        w = 0.38
        for ax, metric in zip(axes[:2], ("ttft", "tpot"), strict=True):
            predicted_ms = [pred[c["name"]][f"{metric}_at_slo_pct_ms"] for c in classes]
            simulated_ms = [c[f"{metric}_at_slo_pct_ms"] for c in classes]
            ax.bar([x - w / 2 for x in xs], predicted_ms, w, label="predicted", color=_GREYS[1])
            ax.bar([x + w / 2 for x in xs], simulated_ms, w, label="simulated", color=_GREYS[3], edgecolor=_GREYS[1])
            targets = [pred[c["name"]][f"{metric}_target_ms"] for c in classes]
            for x, t in zip(xs, targets, strict=True):
                _target_line(ax, x, t)
            ax.set_ylim(0, 1.15 * max([*predicted_ms, *simulated_ms, *targets]))
            ax.set_xticks(list(xs), [c["name"] for c in classes])
            ax.set_ylabel(f"{metric.upper()} at SLO percentile (ms)")
            ax.set_title(f"{metric.upper()}: predicted vs simulated")
        ax = axes[2]
        ax.bar(list(xs), [100 * c["slo_attainment_frac"] for c in classes], color=_GREYS[2])
        ax.set_xticks(list(xs), [c["name"] for c in classes])
        ax.set_ylim(0, 105)
        ax.set_ylabel("SLO attainment (% of requests)")
        ax.set_title("Simulated SLO attainment")
        _legend_below(fig, axes[0])

    return Plot(
        "chart-simulation",
        f"Simulated latency ({verification['requests']:,} requests): TTFT and TPOT (ms) and SLO attainment (%)",
        draw,
        (9.0, 3.4),
    )


def _schedule_plot(schedule: dict[str, Any]) -> Plot:
    hours = schedule["hours"]
    xs = [h["hour"] for h in hours] + [24]  # each hour a step of width 1: the last one repeated at 24

    def through(values: list[float]) -> list[float]:
        return values + values[-1:]

    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        for role, color in (("prefill", _GREYS[0]), ("decode", _GREYS[2])):
            ax1.step(xs, through([h[f"{role}_replicas"] for h in hours]), where="post", color=color, label=f"{role} (scaled)")
            ax1.step(
                xs,
                through([h["coupled"][f"{role}_replicas"] for h in hours]),
                where="post",
                color=color,
                linestyle=":",
                label=f"{role} (coupled)",
            )
        ax1.set_xlabel("hour of the day")
        ax1.set_ylabel("replicas (count)")
        ax1.set_ylim(bottom=0)
        ax1.set_xticks(range(0, 25, 3))
        ax1.set_title("Prefill and decode replicas by hour")
        ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncols=2, frameon=False)
        for label, values, color, style in (
            ("scaled (on demand)", [h["usd_per_hour"] + h["scale_up_usd"] for h in hours], _GREYS[0], "-"),
            (
                "coupled (on demand)",
                [h["coupled"]["usd_per_hour"] + h["coupled"]["scale_up_usd"] for h in hours],
                _GREYS[1],
                ":",
            ),
            (f"fleet ({schedule['fleet']['pricing_mode']})", [h["fleet_usd_per_hour"] for h in hours], _GREYS[2], "--"),
        ):
            ax2.step(xs, through(values), where="post", color=color, linestyle=style, label=label)
        ax2.set_xlabel("hour of the day")
        ax2.set_ylabel("cost (USD/hour)")
        ax2.set_ylim(bottom=0)
        ax2.set_xticks(range(0, 25, 3))
        ax2.set_title("Cost by hour: scaled, coupled, fleet")
        ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncols=2, frameon=False)

    return Plot(
        "chart-schedule",
        "A day of load: prefill and decode replicas (count) and cost (USD/hour) by hour, scaled against coupled and the fleet",
        draw,
        (9.0, 3.8),
    )


def _schedule_parts(schedule: dict[str, Any]) -> list[str]:
    """The schedule's tables (the day's cost, the months) for the page; its chart comes with the others."""
    share = schedule["apart_share_frac"]
    fleet = schedule["fleet"]
    parts = [
        "<h2>A day of load</h2>",
        f'<p class="note">Pools scaled hour by hour on demand, with a {schedule["lead_time_min"]:g}-minute scale-up lead '
        f"time{' (an assumption)' if schedule['lead_time_assumed'] else ''}, against the fleet for the peak held all day "
        f"({html.escape(str(fleet['pricing_mode']))}).</p>",
        _table(
            ("deployment", "USD/day", "USD/month"),
            [
                (f"fleet for the peak ({fleet['pricing_mode']})", _n(fleet["usd_per_day"]), _n(fleet["usd_per_month"])),
                (
                    "the same fleet on demand",
                    _n(schedule["peak_on_demand"]["usd_per_day"]),
                    _n(schedule["peak_on_demand"]["usd_per_month"]),
                ),
                ("scaled: pools apart", _n(schedule["scaled"]["usd_per_day"]), _n(schedule["scaled"]["usd_per_month"])),
                ("coupled: one factor", _n(schedule["coupled"]["usd_per_day"]), _n(schedule["coupled"]["usd_per_month"])),
                (
                    "share of the saving from scaling the pools apart",
                    ("-",) if share is None else (f"{100 * share:.1f}%",),
                    "",
                ),
            ],
        ),
    ]
    if schedule.get("months"):
        parts += [
            "<h2>Purchase schedule under growth</h2>",
            _table(
                ("month", "load", "owned", "bought", "owned share", "USD/month"),
                [
                    (
                        _n(m["month"], "d"),
                        (f"x{m['rate_multiplier']:.3f}",),
                        ", ".join(f"{n} {g}" for g, n in m["owned_gpus"].items() if n) or "-",
                        ", ".join(f"{n} {g}" for g, n in m["bought_gpus"].items() if n) or "-",
                        ("-",) if m["owned_frac"] is None else (f"{100 * m['owned_frac']:.0f}%",),
                        _n(m["usd_per_month"]),
                    )
                    for m in schedule["months"]
                ],
            ),
        ]
    return parts


# ---------------------------------------------------------------------------------------------
# planner size: the procurement sections (recommendation, inputs and assumptions, bill of materials)


def _usd(x: float) -> str:
    return f"{x:,.0f} USD/month"


def _pools_text(pools: Sequence[dict[str, Any]]) -> str:
    return " + ".join(_pool_label(p) for p in pools)


def _pools_usd_per_month(pools: Sequence[dict[str, Any]]) -> float:
    return float(sum(p["usd_per_hour"] for p in pools)) * HOURS_PER_MONTH


def _phase_sentence(data: dict[str, Any], best: dict[str, Any] | None) -> str:
    """What the plan spends per phase, from its pools (and the best co-located baseline's GPUs beside it)."""
    pools = data["pools"]
    total = _pools_usd_per_month(pools)
    by_role: list[str] = []
    for role in sorted({p["role"] for p in pools}, key=lambda r: (r != "prefill", r)):
        mine = [p for p in pools if p["role"] == role]
        share = _pools_usd_per_month(mine) / total if total > 0 else 0.0
        shapes = ", ".join(sorted({f"{p['gpu']} TP{p['tp']}" for p in mine}))
        by_role.append(f"{role} {sum(p['num_gpus'] for p in mine)} GPUs on {shapes} ({100 * share:.0f}% of its GPU cost)")
    text = f"the plan uses {data['num_gpus']} GPUs, " + " and ".join(by_role)
    link_usd = sum(lk["usd_per_hour"] for lk in data["links"]) * HOURS_PER_MONTH
    if link_usd > 0:
        text += f", plus {_usd(link_usd)} of KV link ports"
    if best is not None:
        text += f", against {best['num_gpus']} GPUs for {best['name']} ({_pools_text(best['pools'])})"
    return text


def _warning_reason(warnings: Sequence[str], start: str) -> str | None:
    """The parenthesised reason at the end of the warning that starts with ``start``, if any."""
    for w in warnings:
        if w.startswith(start):
            m = re.search(r"\(([^()]*)\)$", w)
            return m.group(1) if m else None
    return None


def recommendation(doc: dict[str, Any]) -> tuple[str, str]:
    """(the recommendation, why): disaggregated or co-located, by how much against the best co-located
    baseline (``savings_frac``), and the reason from the result's warnings and pools."""
    data = doc["data"]
    warnings = doc.get("warnings", [])
    plan_usd = data["cost"]["usd_per_month"]
    colocated = [b for b in data["baselines"] if b["name"].startswith("colocated")]
    feasible = [b for b in colocated if b["feasible"]]
    best = min(feasible, key=lambda b: b["cost"]["usd_per_month"]) if feasible else None
    plan = f"{_pools_text(data['pools'])}, {_usd(plan_usd)}"
    kind = "co-located" if {p["role"] for p in data["pools"]} == {"colocated"} else "disaggregated"
    savings = data["savings_frac"]
    if savings is None or best is None:
        if colocated:
            why = "no co-located baseline is feasible: " + "; ".join(f"{b['name']}: {b['note']}" for b in colocated)
        else:
            why = next((w for w in warnings if w.startswith("no co-located baseline")), "no co-located baseline was sized")
        return f"{kind.capitalize()} serving ({plan}); nothing co-located to compare it with.", why
    best_usd = best["cost"]["usd_per_month"]
    best_text = f"{best['name']} ({_pools_text(best['pools'])}, {_usd(best_usd)})"
    phases = _phase_sentence(data, best)
    if savings > 0:
        return (
            f"Disaggregated serving ({plan}): {100 * savings:.1f}% ({_usd(best_usd - plan_usd)}) less than the best "
            f"co-located baseline, {best_text}.",
            phases[0].upper() + phases[1:] + ".",
        )
    reason = _warning_reason(warnings, "disaggregation does not pay")
    more = "the same as" if savings == 0 else f"{100 * -savings:.1f}% ({_usd(plan_usd - best_usd)}) more than"
    return (
        f"Co-located serving, {best_text}: the disaggregated plan ({plan}) costs {more} it.",
        (f"{reason[0].upper()}{reason[1:]}: " if reason else "") + phases + ".",
    )


def _recommendation_parts(doc: dict[str, Any]) -> list[str]:
    what, why = recommendation(doc)
    return [
        f'<p class="rec" id="recommendation"><strong>Recommendation:</strong> {html.escape(what)}</p>',
        f'<p class="note" id="recommendation-why">Why: {html.escape(why)}</p>',
    ]


def _text(v: Any) -> str:
    """An input value as a table cell shows it."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_text(x)}" for k, x in v.items()) or "none"
    if isinstance(v, list):
        return ", ".join(_text(x) for x in v) or "none"
    return str(v)


def _lengths(d: dict[str, Any] | None) -> str:
    return "-" if not d else ", ".join(f"{k} {v:g}" for k, v in d.items())


_PROVENANCE = ("transferred from", "measurements of its own", "no fp4 kernels measured", "no fp8 steps measured")


def _gpu_price_basis(item: dict[str, Any], mode: str) -> str:
    """The price basis a GPU line item's description ends with (``MODE, PROVIDER REGION, as of DATE``)."""
    desc = str(item["description"])
    at = desc.rfind(f", {mode}")
    return desc[at + 2 :] if at >= 0 else desc


def _inputs_parts(doc: dict[str, Any]) -> list[str]:
    inputs = doc["inputs"]
    wl = inputs.get("workload", {})
    data = doc["data"]
    pricing = wl.get("pricing", {})
    mode = str(pricing.get("mode", ""))
    parts = [
        '<h2 id="inputs">Inputs and assumptions</h2>',
        _table(
            ("input", "value"),
            [
                ("model", wl.get("model", "-")),
                ("precision", wl.get("precision", "-")),
                ("objective", wl.get("objective", "-")),
                ("workload file", f"{inputs.get('workload_file', 'flags')} (sha256 {inputs.get('workload_sha256', '-')})"),
                ("prefill GPUs allowed", _text(wl.get("hardware", {}).get("prefill_gpus"))),
                ("decode GPUs allowed", _text(wl.get("hardware", {}).get("decode_gpus"))),
                ("KV links allowed", _text(wl.get("hardware", {}).get("links"))),
                ("solver", _text(inputs.get("solver"))),
            ],
        ),
        "<h3>Request classes</h3>",
        _table(
            ("class", "rate (requests/s)", "interarrival cv²", "input tokens", "output tokens", "SLO"),
            [
                (
                    c.get("name", "-"),
                    _n(c.get("rate_rps"), "g"),
                    _n(c.get("interarrival_cv2"), "g"),
                    _lengths(c.get("input_tokens")),
                    _lengths(c.get("output_tokens")),
                    _text(c.get("slo")),
                )
                for c in wl.get("classes", [])
            ],
        ),
        "<h3>Constraints</h3>",
        _table(("constraint", "value"), [(k, _text(v)) for k, v in wl.get("constraints", {}).items()]),
        "<h3>Pricing basis</h3>",
        _table(
            ("pricing", "value"),
            [(k, _text(v)) for k, v in pricing.items()]
            + ([] if "provider" in pricing else [("provider", "not set: each GPU's catalog default price (rows below)")]),
        ),
    ]
    rows = [
        (item["sku"], _gpu_price_basis(item, mode), item.get("source") or "no source")
        for item in data["line_items"]
        if str(item["sku"]).startswith("gpu:")
    ]
    for lk in data["links"]:
        port = lk["port"]
        for part in port["parts"]:
            priced = part["usd_per_port"] is not None
            basis = (
                f"{part['part']} for {lk['link']}: as of {part['as_of']}, amortized over {port['amortization_years']:g} years"
                if priced
                else f"{part['part']} for {lk['link']}: no public price"
            )
            rows.append((f"{part['part']}:{part['component']}", basis, part["source"]))
    parts.append(_table(("price row", "basis", "source"), rows))
    engine = inputs.get("engine")
    provenance = [w for w in doc.get("warnings", []) if any(k in w for k in _PROVENANCE)]
    parts += [
        "<h3>Engine and factor provenance</h3>",
        _table(
            ("item", "value"),
            [
                ("engine", _engine(doc)),
                ("engine version", engine.get("version", "-") if isinstance(engine, dict) else "-"),
                *([("engines compared", _text(inputs["engines"]))] if inputs.get("engines") else []),
                (
                    "factors",
                    "; ".join(provenance)
                    if provenance
                    else "no warning names a transferred or substituted factor set for the plan's GPUs",
                ),
            ],
        ),
    ]
    if doc.get("warnings"):
        parts.append(
            "<h3>Assumptions and warnings</h3><ul>"
            + "".join(f'<li class="warn">{html.escape(w)}</li>' for w in doc["warnings"])
            + "</ul>"
        )
    return parts


def bom_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The bill of materials: every line item (USD per its period), then each KV link part with no price
    (``extended_usd`` None: no public price, never 0), counted per GPU port as the priced parts are."""
    rows = [dict(item) for item in data["line_items"]]
    for lk in data["links"]:
        ports = lk["prefill_ports"] + lk["decode_ports"]
        for part in lk["port"]["parts"]:
            if part["usd_per_port"] is None:
                rows.append(
                    {
                        "sku": f"{part['part']}:{part['component']}",
                        "description": f"{part['name']}: {part['part']} for {lk['link']} "
                        f"({lk['prefill_ports']} prefill + {lk['decode_ports']} decode GPU ports; "
                        f"{part['quantity_per_port']} per GPU port)",
                        "quantity": part["quantity_per_port"] * ports,
                        "unit_usd": None,
                        "extended_usd": None,
                        "period": "month",
                        "source": part["source"],
                    }
                )
    return rows


def _no_price(x: float | None, fmt: str) -> tuple[str]:
    return ("no public price",) if x is None else _n(x, fmt)


def _bom_parts(data: dict[str, Any], data_whole_nodes: bool) -> list[str]:
    rows = bom_rows(data)
    monthly = sum(r["extended_usd"] for r in rows if r["period"] == "month" and r["extended_usd"] is not None)
    plan_usd = data["cost"]["usd_per_month"]
    nodes = data["nodes"]
    budget = next((nd["rack_power_kw"] for nd in nodes if nd.get("rack_power_kw") is not None), None)
    parts = [
        '<h2 id="bom">Bill of materials</h2>',
        "<h3>Nodes</h3>",
        _table(
            (
                "GPU",
                "nodes",
                "GPUs per node",
                "GPUs in the nodes",
                "GPUs used",
                "GPUs stranded",
                "GPU-fabric NICs",
                "north-south NICs",
                "GPU kW per node at load",
                "kW per node at peak",
                "nodes per rack",
                "racks",
                "kW per rack at peak",
            ),
            [
                (
                    nd["gpu"],
                    _n(nd["nodes"], "d"),
                    _n(nd["gpus_per_node"], "d"),
                    _n(nd["nodes"] * nd["gpus_per_node"], "d"),
                    _n(nd["gpus_used"], "d"),
                    _n(nd["stranded_gpus"], "d"),
                    _count(nd.get("compute_nics"), nd.get("compute_nics_per_node")),
                    _count(nd.get("north_south_nics"), nd.get("north_south_nics_per_node")),
                    _n(nd.get("gpu_power_kw_per_node"), ".2f"),
                    _n(nd.get("peak_kw_per_node"), ".2f"),
                    _n_or(nd.get("nodes_per_rack"), "d", "not computed"),
                    _n_or(nd.get("racks"), "d", "not computed"),
                    _n_or(nd.get("peak_kw_per_rack"), ".1f", "not computed"),
                )
                for nd in nodes
            ],
        ),
        '<p class="note">'
        + (
            "GPUs are priced as whole nodes (pricing.whole_nodes): the stranded GPUs are paid for (their line items). "
            if data_whole_nodes
            else "GPUs are priced one by one (pricing.whole_nodes false): the nodes are how the replicas pack, and "
            "stranded GPUs are not in the cost. "
        )
        + f"Power: {data['power_kw']:.1f} kW, the average draw of the plan's GPUs at its load "
        "(power_kw); per node at load, the GPU power of the pools on that GPU type over its nodes, GPUs only "
        "(stranded GPUs off). Per node at peak: "
        + "; ".join(f"{_esc(nd['gpu'])}, {_esc(nd.get('peak_basis', 'not recorded'))}" for nd in nodes)
        + ". NICs: "
        + "; ".join(
            f"{_esc(nd['gpu'])}: {nd['compute_nics_per_node']} + "
            f"{_esc(nd['north_south_nics_per_node'] if nd.get('north_south_nics_per_node') is not None else 'unknown')} per node "
            f"({_esc(nd.get('nics_source'))})"
            if nd.get("compute_nics_per_node") is not None
            else f"{_esc(nd['gpu'])}: not in the catalog"
            for nd in nodes
        )
        + ". Racks: "
        + (
            f"a {budget:g} kW budget (constraints.rack_power_kw), each rack one GPU type's nodes: "
            + "; ".join(_esc(nd.get("rack_note", "")) for nd in nodes)
            if budget is not None
            else "not computed: constraints.rack_power_kw (your facility's power per rack) is not given"
        )
        + ".</p>",
    ]
    if data["links"]:
        parts += [
            "<h3>KV network</h3>",
            _table(
                ("link", "GPU ports (prefill + decode)", "switch ports", "cables", "utilization", "USD/month", "unpriced"),
                [
                    (
                        lk["link"],
                        (f"{lk['prefill_ports']} + {lk['decode_ports']}",),
                        _n(lk["switch_ports"], "d"),
                        _n(lk["cables"], "d"),
                        (f"{100 * lk['utilization_frac']:.0f}%",),
                        _n(lk["usd_per_hour"] * HOURS_PER_MONTH),
                        _text(lk["port"]["missing_parts"]),
                    )
                    for lk in data["links"]
                ],
            ),
        ]
    table_rows: list[Sequence[Any]] = [
        (
            r["sku"],
            r["description"],
            _n(r["quantity"], "d"),
            _no_price(r["unit_usd"], ",.2f"),
            _no_price(r["extended_usd"], ",.2f"),
            r["period"],
            r.get("source") or "no source",
        )
        for r in rows
    ]
    table_rows.append(("total", "priced line items, per month", "", "", _n(monthly, ",.2f"), "month", ""))
    table_rows.append(("plan cost", "data.cost.usd_per_month", "", "", _n(plan_usd, ",.2f"), "month", ""))
    if abs(monthly - plan_usd) >= 0.005:  # half a cent: more than the float sums' rounding
        table_rows.append(("not itemized", "plan cost less the line items", "", "", _n(plan_usd - monthly, ",.2f"), "month", ""))
    parts += [
        "<h3>Line items</h3>",
        _table(("item", "description", "quantity", "unit (USD)", "extended (USD)", "period", "price source"), table_rows),
        '<p class="note">Parts with no public price are listed with their count and left out of the total '
        "(the plan costs more than it says by their price).</p>",
    ]
    return parts


# ---------------------------------------------------------------------------------------------
# planner sweep


def sweep_plots(data: dict[str, Any]) -> list[Plot]:
    var, unit = data["variable"], data["unit"]
    points = data["points"]
    ok = [p for p in points if p["status"] == "ok"]
    bad = [p["value"] for p in points if p["status"] != "ok"]

    def cost(fig: Any) -> None:
        ax = fig.add_subplot()
        ax.plot([p["value"] for p in ok], [p["usd_per_month"] for p in ok], "o-", color=_GREYS[0], label="cost")
        ax.set_xlabel(f"{var} ({unit})")
        ax.set_ylabel("cost (USD/month)")
        ax2 = ax.twinx()
        ax2.plot([p["value"] for p in ok], [p["num_gpus"] for p in ok], "s--", color=_GREYS[2], label="GPUs")
        ax2.set_ylabel("GPUs (count)")
        ax2.grid(False)
        for v in data["configuration_changes"]:
            ax.axvline(v, color=_GREYS[1], linestyle=":", linewidth=1)
        _mark_no_plan(ax, bad)
        ax.set_ylim(bottom=0)
        ax2.set_ylim(bottom=0)
        ax.set_title(f"Cost and GPUs against {var} (dotted: the configuration changes)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        _legend_outside(fig, ax, h1 + h2, l1 + l2)

    def savings(fig: Any) -> None:
        ax = fig.add_subplot()
        pts = [p for p in ok if p["savings_frac"] is not None]
        ax.plot([p["value"] for p in pts], [100 * p["savings_frac"] for p in pts], "o-", color=_GREYS[0], label="savings")
        ax.axhline(0, color=_GREYS[1], linewidth=0.8)
        _mark_no_plan(ax, bad)
        ax.set_xlabel(f"{var} ({unit})")
        ax.set_ylabel("savings vs best co-located (%)")
        ax.set_title("When disaggregation pays (above 0: cheaper than co-located)")
        _legend_outside(fig, ax)

    return [
        Plot("chart-sweep-cost", f"Cost (USD/month) and GPUs against {var} ({unit})", cost, (8.5, 3.2)),
        Plot(
            "chart-sweep-savings",
            f"Savings against the best co-located baseline (%) against {var} ({unit})",
            savings,
            (8.5, 3.2),
        ),
    ]


def sweep_charts(data: dict[str, Any]) -> list[Chart]:
    return [render(p) for p in sweep_plots(data)]


MAX_GRID_LINES = len(_MARKERS)  # a two-axis chart draws one line per value of the second axis, at most this many


def grid_plots(data: dict[str, Any]) -> list[Plot]:
    """A sweep of several axes: for exactly two axes whose first is numeric, cost against the first axis with one
    line per value of the second (at most :data:`MAX_GRID_LINES`); otherwise no chart (the table has every point)."""
    axes = data["axes"]
    if len(axes) != 2 or axes[0].get("kind") not in ("number", "integer") or len(axes[1]["values"]) > MAX_GRID_LINES:
        return []
    first, second = axes[0]["variable"], axes[1]["variable"]
    unit = axes[0]["unit"]
    from planner.report.sweep import value_text

    def cost(fig: Any) -> None:
        ax = fig.add_subplot()
        for k, v in enumerate(axes[1]["values"]):
            pts = [p for p in data["points"] if p["values"][second] == v and p["status"] == "ok"]
            ax.plot(
                [p["values"][first] for p in pts],
                [p["usd_per_month"] for p in pts],
                marker=_MARKERS[k % len(_MARKERS)],
                linestyle=_DASHES[k % len(_DASHES)],
                color=_GREYS[k % 3],
                label=f"{second} = {value_text(v)}",
            )
        _mark_no_plan(ax, sorted({p["values"][first] for p in data["points"] if p["status"] != "ok"}))
        ax.set_xlabel(f"{first}" + (f" ({unit})" if unit else ""))
        ax.set_ylabel("cost (USD/month)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"Cost against {first}, one line per {second}")
        _legend_outside(fig, ax)

    caption = f"Cost (USD/month) against {first}" + (f" ({unit})" if unit else "") + f", one line per value of {second}"
    return [Plot("chart-sweep-grid-cost", caption, cost, (8.5, 3.4))]


# ---------------------------------------------------------------------------------------------
# The page


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
figure{margin:1.2em 0}figcaption{font-weight:600;margin-bottom:.3em}figure svg{max-width:100%;height:auto}
.warn{color:#a50}.note{color:#555;font-size:.9em}h3{font-size:1em}
.rec{font-size:1.1em;padding:.5em .8em;background:#f4f4f4;border-left:4px solid #333}
"""

_JS = (
    "(function(){var ok=true;document.querySelectorAll('script[type=\"application/json\"]').forEach(function(s){"
    "try{JSON.parse(s.textContent);}catch(e){ok=false;}});"
    "document.body.setAttribute('data-rendered',ok?'ok':'bad-json');})();"
)


_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def script_safe_json(text: str) -> str:
    """JSON text that a ``<script>`` element cannot end early or turn into a comment: ``<``, ``>`` and ``&``
    (found only inside JSON strings) as ``\\u003c``, ``\\u003e``, ``\\u0026``, which JSON.parse reads back as
    the same characters (``</script>``, ``<!--<script>`` in a catalog name stay text)."""
    return text.translate(_SCRIPT_SAFE)


def _json_block(block_id: str, text: str) -> str:
    safe = script_safe_json(text)
    return f'<script type="application/json" id="{block_id}">{safe}</script>'


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for cell in row:
            numeric = isinstance(cell, tuple)
            text = cell[0] if numeric else cell
            out.append(f'<td class="n">{html.escape(str(text))}</td>' if numeric else f"<td>{html.escape(str(text))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _n(x: float | None, fmt: str = ",.0f") -> tuple[str]:
    return ("-" if x is None else format(x, fmt),)


def _n_or(x: float | None, fmt: str, missing: str) -> tuple[str]:
    return (missing if x is None else format(x, fmt),)


def _count(total: int | None, per_node: int | None) -> tuple[str]:
    """A NIC count cell: the total and its per-node figure, or that the catalog does not name the node's NICs."""
    return ("not in the catalog",) if total is None or per_node is None else (f"{total} ({per_node} per node)",)


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _figure(chart: Chart) -> str:
    chart_id, caption, svg = chart
    return f'<figure id="{chart_id}"><figcaption>{html.escape(caption)}</figcaption>{svg}</figure>'


def _page(title: str, parts: Sequence[str], blocks: Sequence[tuple[str, str]]) -> str:
    body = "\n".join(parts)
    data = "\n".join(_json_block(i, t) for i, t in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n{data}\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


def _engine(doc: dict[str, Any]) -> str:
    """The serving engine a result names (``inputs.engine``), as the summary row shows it."""
    engine = doc["inputs"].get("engine")
    return engine_text(engine) if label_of(engine) is not None and isinstance(engine, dict) else "not recorded"


def size_plots(doc: dict[str, Any], sweeps: dict[str, Any] | None) -> list[Plot]:
    """The charts of a ``planner size`` report, in page order; pools keep one colour across them."""
    data = doc["data"]
    styles = pool_styles(data)
    plots = [_cost_plot(data, styles), _pool_plot(data, styles), _latency_plot(data)]
    if sweeps is not None:
        plots.append(_capacity_plot(sweeps["capacity_curve"]))
        plots.append(_pareto_plot(sweeps["slo_grid"], sweeps["slo_grid_class"], sweeps["slo_grid_note"]))
    if data.get("verification"):
        plots.append(_simulation_plot(data["verification"], data["predicted"]))
    if data.get("schedule"):
        plots.append(_schedule_plot(data["schedule"]))
    return plots


def size_html(doc: dict[str, Any], sweeps: dict[str, Any] | None, sweeps_engine: str | None = None) -> str:
    """The report of a ``planner size`` result (its JSON envelope) and, when given, the capacity
    curve and target grid of :func:`planner.api.sweep.report_sweeps` (re-sized under ``sweeps_engine``,
    ``ID@VERSION``, where that is not the result's engine)."""
    data = doc["data"]
    wl = doc["inputs"].get("workload", {})
    title = f"planner size: {wl.get('model', '')} ({wl.get('precision', '')})"
    c = data["cost"]
    pr = data["predicted"]
    parts = [
        *_recommendation_parts(doc),
        '<p class="note">Figures from the planner size result embedded below as JSON (id planner-result); '
        f"planner {html.escape(str(doc['planner_version']))}, schema_version {doc['schema_version']}, "
        f"optimality {html.escape(str(data['optimality']))}.</p>",
        "<h2>Summary</h2>",
        _table(
            ("metric", "value"),
            [
                ("engine", _engine(doc)),
                ("GPUs", _n(data["num_gpus"], "d")),
                ("cost (USD/month)", _n(c["usd_per_month"])),
                ("cost (USD/hour)", _n(c["usd_per_hour"], ",.2f")),
                ("cost (USD per 1M output tokens)", _n(c["usd_per_mtok"], ".3f")),
                ("power (kW)", _n(data["power_kw"], ".1f")),
                ("TTFT p50 / at SLO percentile (ms)", (f"{pr['ttft_p50_ms']:.1f} / {pr['ttft_at_slo_ms']:.1f}",)),
                ("TPOT p50 / at SLO percentile (ms)", (f"{pr['tpot_p50_ms']:.1f} / {pr['tpot_at_slo_ms']:.1f}",)),
                (
                    "savings against the best co-located baseline",
                    ("-",) if data["savings_frac"] is None else (f"{100 * data['savings_frac']:.1f}%",),
                ),
            ],
        ),
        "<h2>Pools</h2>",
        _table(
            ("role", "GPU", "TP", "replicas", "GPUs", "max batch", "utilization", "USD/month"),
            [
                (
                    p["role"],
                    p["gpu"],
                    _n(p["tp"], "d"),
                    _n(p["replicas"], "d"),
                    _n(p["num_gpus"], "d"),
                    _n(p["max_batch"], "d"),
                    (f"{100 * p['utilization_frac']:.0f}%",),
                    _n(p["usd_per_hour"] * HOURS_PER_MONTH),
                )
                for p in data["pools"]
            ],
        ),
        "<h2>Baselines</h2>",
        _table(
            ("baseline", "GPUs", "USD/month", "note"),
            [
                (
                    b["name"],
                    _n(b.get("num_gpus"), "d"),
                    _n(b["cost"].get("usd_per_month")) if b["feasible"] else ("infeasible",),
                    b["note"],
                )
                for b in data["baselines"]
            ],
        ),
    ]
    parts += _bom_parts(data, bool(wl.get("pricing", {}).get("whole_nodes")))
    if data.get("engines"):
        parts += [
            "<h2>Engines compared</h2>",
            _table(
                ("engine", "GPUs", "USD/month", ""),
                [
                    (
                        engine_text(e["engine"]),
                        _n(e["num_gpus"], "d"),
                        _n(e["usd_per_month"]) if e["feasible"] else ("infeasible",),
                        "chosen" if e["chosen"] else "",
                    )
                    for e in data["engines"]
                ],
            ),
        ]
    if data.get("schedule"):
        parts += _schedule_parts(data["schedule"])
    parts += _inputs_parts(doc)
    parts.append("<h2>Charts</h2>")
    parts += [_figure(render(plot)) for plot in size_plots(doc, sweeps)]
    blocks = [("planner-result", to_json(doc))]
    if sweeps is not None:
        parts.append(
            '<p class="note">The capacity curve and the Pareto front come from re-sizing the workload at 8 arrival rates '
            "and a 4x4 grid of TTFT and TPOT targets (embedded as JSON, id planner-sweeps); x marks a point with no plan.</p>"
        )
        if sweeps_engine is not None and sweeps_engine != label_of(doc["inputs"].get("engine")):
            parts.append(
                f'<p class="note warn">The capacity curve and the Pareto front were re-sized under engine '
                f"{html.escape(sweeps_engine)}, not the engine of the result ({html.escape(_engine(doc))}).</p>"
            )
        blocks.append(("planner-sweeps", json.dumps(sweeps, sort_keys=True, indent=1, allow_nan=False) + "\n"))
    return _page(title, parts, blocks)


def sweep_html(doc: dict[str, Any]) -> str:
    """The report of a ``planner sweep`` result (one axis: charts against it; several: :func:`grid_html`)."""
    data = doc["data"]
    from planner.report.sweep import one_axis

    if not one_axis(data):
        return grid_html(doc)
    title = f"planner sweep: {data['variable']} ({data['unit']})"
    rows = []
    for i, p in enumerate(data["points"]):
        ok = p["status"] == "ok"
        rows.append(
            (
                _n(i + 1, "d"),
                _n(p["value"], "g"),
                _n(p["usd_per_month"]) if ok else (p["status"],),
                _n(p["num_gpus"], "d") if ok else ("-",),
                (p["configuration"] + (" *" if p["configuration_changed"] else "")) if ok else p.get("message", ""),
                ("-",) if not ok or p["savings_frac"] is None else (f"{100 * p['savings_frac']:.1f}%",),
            )
        )
    parts = [
        f'<p class="note">Engine: {html.escape(_engine(doc))}.</p>',
        "<h2>Points</h2>",
        _table(("point", f"{data['variable']} ({data['unit']})", "USD/month", "GPUs", "configuration", "savings"), rows),
        '<p class="note">* the configuration (pool roles, GPUs, TP) changes at this point.</p>',
    ]
    parts += [f"<p>{html.escape(line)}</p>" for line in crossing_lines(data)]
    parts.append("<h2>Charts</h2>")
    parts += [_figure(ch) for ch in sweep_charts(data)]
    return _page(title, parts, [("planner-result", to_json(doc))])


def grid_html(doc: dict[str, Any]) -> str:
    """The report of a sweep of several axes or scenarios: the points (a column per axis), where the
    configuration changes, and for two axes a chart (:func:`grid_plots`)."""
    from planner.report.sweep import axis_cell, axis_columns, summary_lines

    data = doc["data"]
    cols = axis_columns(data)
    title = f"planner sweep: {', '.join(a['variable'] for a in data['axes'])} ({len(data['points'])} points)"
    rows = []
    for i, p in enumerate(data["points"]):
        ok = p["status"] == "ok"
        rows.append(
            (
                _n(i + 1, "d"),
                *(axis_cell(p, c) for c in cols),
                _n(p["usd_per_month"]) if ok else (p["status"],),
                _n(p["num_gpus"], "d") if ok else ("-",),
                (p.get("configuration_id") or "") if ok else "",
                p["configuration"] if ok else p.get("message", ""),
                ("-",) if not ok or p["savings_frac"] is None else (f"{100 * p['savings_frac']:.1f}%",),
            )
        )
    plots = grid_plots(data)
    parts = [
        f'<p class="note">Engine: {html.escape(_engine(doc))}.</p>',
        "<h2>Points</h2>",
        _table(("point", *cols, "USD/month", "GPUs", "config", "configuration", "savings"), rows),
        "<h2>Where the configuration changes</h2>",
        "<ul>" + "".join(f"<li>{html.escape(line.strip())}</li>" for line in summary_lines(data, limit=50)) + "</ul>",
    ]
    if plots:
        parts.append("<h2>Charts</h2>")
        parts += [_figure(render(plot)) for plot in plots]
    else:
        parts.append(
            '<p class="note">No chart: a chart is drawn for two axes whose first is numeric; the table has every point.</p>'
        )
    return _page(title, parts, [("planner-result", to_json(doc))])
