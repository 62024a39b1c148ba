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
    "grid.alpha": 0.3,
    "figure.dpi": 72.0,
}
_PALETTE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000")

Chart = tuple[str, str, str]  # (id, caption, inline svg)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _usd_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _svg(fig: Any) -> str:
    plt = _plt()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if "USD" in axis.get_label_text():
                _usd_axis(axis)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return text.strip()


def _chart(chart_id: str, caption: str, draw: Callable[[Any], None], size: tuple[float, float] = (7.5, 3.2)) -> Chart:
    plt = _plt()
    with plt.rc_context(_RC):
        fig = plt.figure(figsize=size)
        draw(fig)
        return chart_id, caption, _scope_ids(_svg(fig), chart_id)


def _scope_ids(svg: str, prefix: str) -> str:
    """Matplotlib numbers its element ids per figure (figure_1, axes_1, ...): prefix them with the
    chart's id, and every reference to them, so ids stay unique across the page's charts."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)


def _pool_label(p: dict[str, Any]) -> str:
    return f"{p['role']} {p['replicas']}x TP{p['tp']} {p['gpu']}"


# ---------------------------------------------------------------------------------------------
# planner size


def _cost_chart(data: dict[str, Any]) -> Chart:
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
        labels = [r[0] for r in rows]
        seen: dict[str, str] = {}
        drawn: set[str] = set()
        for y, (_, parts) in enumerate(rows):
            left = 0.0
            for name, usd in parts:
                color = seen.setdefault(name, _PALETTE[len(seen) % len(_PALETTE)])
                first = name not in drawn
                drawn.add(name)
                ax.barh(y, usd, left=left, color=color, edgecolor="white", label=name if first else None)
                left += usd
            ax.text(left, y, f" {left:,.0f}", va="center", fontsize=8)
        ax.set_yticks(range(len(rows)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("cost (USD/month)")
        ax.set_title("Cost per month by pool: plan against each baseline")
        ax.legend(fontsize=7, loc="lower right")
        ax.margins(x=0.18)

    return _chart("chart-cost", "Cost per month by pool against each baseline (USD/month)", draw, (7.5, 0.6 * len(rows) + 1.6))


def _pool_chart(data: dict[str, Any]) -> Chart:
    pools = data["pools"]

    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        labels = [_pool_label(p) for p in pools]
        ys = range(len(pools))
        ax1.barh(ys, [p["num_gpus"] for p in pools], color=_PALETTE[0])
        for y, p in zip(ys, pools, strict=True):
            ax1.text(p["num_gpus"], y, f" {p['num_gpus']}", va="center", fontsize=8)
        ax1.set_yticks(ys, labels)
        ax1.invert_yaxis()
        ax1.set_xlabel("GPUs (count)")
        ax1.set_title("GPU count per pool")
        ax1.margins(x=0.2)
        ax2.barh(ys, [100 * p["utilization_frac"] for p in pools], color=_PALETTE[2])
        for y, p in zip(ys, pools, strict=True):
            ax2.text(100 * p["utilization_frac"], y, f" {100 * p['utilization_frac']:.0f}%", va="center", fontsize=8)
        ax2.set_yticks(ys, [])
        ax2.invert_yaxis()
        ax2.set_xlim(0, 110)
        ax2.set_xlabel("utilization (%)")
        ax2.set_title("Utilization per pool")

    return _chart("chart-pools", "GPU count (GPUs) and utilization (%) per pool", draw, (7.5, 0.45 * len(pools) + 1.6))


def _latency_chart(data: dict[str, Any]) -> Chart:
    classes = data["predicted"]["by_class"]

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, 2)
        for ax, metric in zip(axes, ("ttft", "tpot"), strict=True):
            xs = range(len(classes))
            w = 0.38
            ax.bar([x - w / 2 for x in xs], [c[f"{metric}_p50_ms"] for c in classes], w, label="p50", color=_PALETTE[4])
            ax.bar(
                [x + w / 2 for x in xs],
                [c[f"{metric}_at_slo_pct_ms"] for c in classes],
                w,
                label="at SLO percentile",
                color=_PALETTE[0],
            )
            for x, c in zip(xs, classes, strict=True):
                ax.hlines(c[f"{metric}_target_ms"], x - 0.45, x + 0.45, colors=_PALETTE[1], linestyles="dashed")
                ax.text(x + 0.45, c[f"{metric}_target_ms"], f"target {c[f'{metric}_target_ms']:g}", fontsize=7, va="bottom")
            ax.set_xticks(list(xs), [f"{c['name']} (p{100 * c[f'{metric}_slo_percentile']:g})" for c in classes])
            ax.set_ylabel(f"{metric.upper()} (ms)")
            ax.set_title(f"Predicted {metric.upper()} against the SLO")
            ax.legend(fontsize=7, loc="lower right")

    return _chart("chart-latency", "Predicted TTFT and TPOT percentiles against the SLO (ms)", draw)


def _capacity_chart(curve: Sequence[dict[str, Any]]) -> Chart:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        ok = [p for p in curve if p["status"] == "ok"]
        bad = [p for p in curve if p["status"] != "ok"]
        ax.plot([p["rate_rps"] for p in ok], [p["usd_per_month"] for p in ok], "o-", color=_PALETTE[0], label="cost")
        ax.set_xlabel("arrival rate (requests/s)")
        ax.set_ylabel("cost (USD/month)", color=_PALETTE[0])
        ax2 = ax.twinx()
        ax2.plot([p["rate_rps"] for p in ok], [p["num_gpus"] for p in ok], "s--", color=_PALETTE[1], label="GPUs")
        ax2.set_ylabel("GPUs (count)", color=_PALETTE[1])
        ax2.grid(False)
        if bad:
            ax.plot([p["rate_rps"] for p in bad], [0 for _ in bad], "x", color="black", label="no plan (infeasible)")
        ax.set_ylim(bottom=0)
        ax2.set_ylim(bottom=0)
        ax.set_title("Capacity curve: cost and GPUs against arrival rate")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")

    return _chart("chart-capacity", "Capacity curve: cost (USD/month) and GPUs against arrival rate (requests/s)", draw)


def _pareto_chart(grid: Sequence[dict[str, Any]], who: str, note: str) -> Chart:
    tpots = sorted({p["tpot_target_ms"] for p in grid})

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        for i, t in enumerate(tpots):
            pts = [p for p in grid if p["tpot_target_ms"] == t and p["status"] == "ok"]
            ax.plot(
                [p["ttft_target_ms"] for p in pts],
                [p["usd_per_month"] for p in pts],
                "o-",
                color=_PALETTE[i % len(_PALETTE)],
                label=f"TPOT target {t:g} ms",
            )
        front = [p for p in grid if p.get("on_front")]
        if front:
            ax.plot(
                [p["ttft_target_ms"] for p in front],
                [p["usd_per_month"] for p in front],
                "o",
                markersize=11,
                markerfacecolor="none",
                markeredgecolor="black",
                label="Pareto front",
            )
        ax.set_xlabel(f"TTFT target (ms, class {who})")
        ax.set_ylabel("cost (USD/month)")
        ax.set_ylim(bottom=0)
        title = "Pareto front: cost against the TTFT and TPOT targets"
        ax.set_title(title + (f" ({note})" if note else ""))
        ax.legend(fontsize=7)

    return _chart("chart-pareto", "Pareto front of cost (USD/month) against the TTFT and TPOT targets (ms)", draw)


def _simulation_chart(verification: dict[str, Any], predicted: dict[str, Any]) -> Chart:
    classes = verification["by_class"]
    pred = {c["name"]: c for c in predicted["by_class"]}

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, 3)
        xs = range(len(classes))
        w = 0.38
        for ax, metric in zip(axes[:2], ("ttft", "tpot"), strict=True):
            ax.bar(
                [x - w / 2 for x in xs],
                [pred[c["name"]][f"{metric}_at_slo_pct_ms"] for c in classes],
                w,
                label="predicted",
                color=_PALETTE[0],
            )
            ax.bar(
                [x + w / 2 for x in xs], [c[f"{metric}_at_slo_pct_ms"] for c in classes], w, label="simulated", color=_PALETTE[2]
            )
            for x, c in zip(xs, classes, strict=True):
                ax.hlines(pred[c["name"]][f"{metric}_target_ms"], x - 0.45, x + 0.45, colors=_PALETTE[1], linestyles="dashed")
            ax.set_xticks(list(xs), [c["name"] for c in classes])
            ax.set_ylabel(f"{metric.upper()} at SLO percentile (ms)")
            ax.set_title(f"{metric.upper()}: predicted vs simulated")
            ax.legend(fontsize=7, loc="lower right")
        ax = axes[2]
        ax.bar(list(xs), [100 * c["slo_attainment_frac"] for c in classes], color=_PALETTE[5])
        ax.set_xticks(list(xs), [c["name"] for c in classes])
        ax.set_ylim(0, 105)
        ax.set_ylabel("SLO attainment (% of requests)")
        ax.set_title("Simulated SLO attainment")

    return _chart(
        "chart-simulation",
        f"Simulated latency ({verification['requests']:,} requests): TTFT and TPOT (ms) and SLO attainment (%)",
        draw,
        (9.0, 3.2),
    )


def _schedule_chart(schedule: dict[str, Any]) -> Chart:
    hours = schedule["hours"]
    xs = [h["hour"] for h in hours] + [24]  # each hour a step of width 1: the last one repeated at 24

    def through(values: list[float]) -> list[float]:
        return values + values[-1:]

    def draw(fig: Any) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        for role, color in (("prefill", _PALETTE[0]), ("decode", _PALETTE[1])):
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
        ax1.legend(fontsize=7, loc="lower right")
        for label, values, color, style in (
            ("scaled (on demand)", [h["usd_per_hour"] + h["scale_up_usd"] for h in hours], _PALETTE[2], "-"),
            (
                "coupled (on demand)",
                [h["coupled"]["usd_per_hour"] + h["coupled"]["scale_up_usd"] for h in hours],
                _PALETTE[5],
                ":",
            ),
            (f"fleet ({schedule['fleet']['pricing_mode']})", [h["fleet_usd_per_hour"] for h in hours], _PALETTE[7], "--"),
        ):
            ax2.step(xs, through(values), where="post", color=color, linestyle=style, label=label)
        ax2.set_xlabel("hour of the day")
        ax2.set_ylabel("cost (USD/hour)")
        ax2.set_ylim(bottom=0)
        ax2.set_xticks(range(0, 25, 3))
        ax2.set_title("Cost by hour: scaled, coupled, fleet")
        ax2.legend(fontsize=7, loc="lower right")

    return _chart(
        "chart-schedule",
        "A day of load: prefill and decode replicas (count) and cost (USD/hour) by hour, scaled against coupled and the fleet",
        draw,
        (9.0, 3.4),
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
# planner sweep


def sweep_charts(data: dict[str, Any]) -> list[Chart]:
    var, unit = data["variable"], data["unit"]
    points = data["points"]
    ok = [p for p in points if p["status"] == "ok"]

    def cost(fig: Any) -> None:
        ax = fig.add_subplot()
        ax.plot([p["value"] for p in ok], [p["usd_per_month"] for p in ok], "o-", color=_PALETTE[0], label="cost")
        ax.set_xlabel(f"{var} ({unit})")
        ax.set_ylabel("cost (USD/month)", color=_PALETTE[0])
        ax2 = ax.twinx()
        ax2.plot([p["value"] for p in ok], [p["num_gpus"] for p in ok], "s--", color=_PALETTE[1], label="GPUs")
        ax2.set_ylabel("GPUs (count)", color=_PALETTE[1])
        ax2.grid(False)
        for v in data["configuration_changes"]:
            ax.axvline(v, color="grey", linestyle=":", linewidth=1)
        bad = [p for p in points if p["status"] != "ok"]
        if bad:
            ax.plot([p["value"] for p in bad], [0 for _ in bad], "x", color="black", label="no plan")
        ax.set_ylim(bottom=0)
        ax2.set_ylim(bottom=0)
        ax.set_title(f"Cost and GPUs against {var} (dotted: the configuration changes)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")

    def savings(fig: Any) -> None:
        ax = fig.add_subplot()
        pts = [p for p in ok if p["savings_frac"] is not None]
        ax.plot([p["value"] for p in pts], [100 * p["savings_frac"] for p in pts], "o-", color=_PALETTE[2])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"{var} ({unit})")
        ax.set_ylabel("savings vs best co-located (%)")
        ax.set_title("When disaggregation pays (above 0: cheaper than co-located)")

    return [
        _chart("chart-sweep-cost", f"Cost (USD/month) and GPUs against {var} ({unit})", cost),
        _chart("chart-sweep-savings", f"Savings against the best co-located baseline (%) against {var} ({unit})", savings),
    ]


# ---------------------------------------------------------------------------------------------
# The page


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
figure{margin:1.2em 0}figcaption{font-weight:600;margin-bottom:.3em}figure svg{max-width:100%;height:auto}
.warn{color:#a50}.note{color:#555;font-size:.9em}
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
    if doc.get("warnings"):
        parts.append(
            "<h2>Warnings</h2><ul>" + "".join(f'<li class="warn">{html.escape(w)}</li>' for w in doc["warnings"]) + "</ul>"
        )
    parts.append("<h2>Charts</h2>")
    charts = [_cost_chart(data), _pool_chart(data), _latency_chart(data)]
    if sweeps is not None:
        charts.append(_capacity_chart(sweeps["capacity_curve"]))
        charts.append(_pareto_chart(sweeps["slo_grid"], sweeps["slo_grid_class"], sweeps["slo_grid_note"]))
    if data.get("verification"):
        charts.append(_simulation_chart(data["verification"], pr))
    if data.get("schedule"):
        charts.append(_schedule_chart(data["schedule"]))
    parts += [_figure(ch) for ch in charts]
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
    """The report of a ``planner sweep`` result."""
    data = doc["data"]
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
