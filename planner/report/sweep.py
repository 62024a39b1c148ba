"""Tables, CSV rows and the sparkline of ``planner sweep``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.table import Table

_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One block character per value, scaled from the smallest to the largest; a gap for None."""
    have = [v for v in values if v is not None]
    if not have:
        return " " * len(values)
    lo, hi = min(have), max(have)
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif hi == lo:
            out.append(_BLOCKS[len(_BLOCKS) // 2])
        else:
            out.append(_BLOCKS[min(len(_BLOCKS) - 1, int((v - lo) / (hi - lo) * len(_BLOCKS)))])
    return "".join(out)


def crossing_lines(data: dict[str, Any]) -> list[str]:
    """Where disaggregation starts or stops paying (savings against co-located crossing 0)."""
    var, unit = data["variable"], data["unit"]
    lines = []
    for c in data["disaggregation_crossings"]:
        a, b = c["between"]
        lines.append(f"disaggregation {c['kind']} paying between {var} = {a:g} and {b:g} {unit}")
    have = [p for p in data["points"] if p["status"] == "ok" and p.get("savings_frac") is not None]
    if not lines and have:
        pays = have[0]["savings_frac"] > 0
        lines.append(f"disaggregation {'pays' if pays else 'does not pay'} at every point with a co-located baseline")
    elif not have:
        lines.append("no point has a co-located baseline to compare with")
    return lines


def csv_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, p in enumerate(data["points"]):
        ok = p["status"] == "ok"
        best = p.get("best_colocated") or {}
        rows.append(
            {
                "point": i + 1,
                "variable": data["variable"],
                "value": p["value"],
                "unit": data["unit"],
                "status": p["status"],
                "usd_per_month": p.get("usd_per_month"),
                "num_gpus": p.get("num_gpus"),
                "configuration": p.get("configuration") if ok else p.get("message"),
                "configuration_changed": p["configuration_changed"],
                "savings_frac": p.get("savings_frac"),
                "best_colocated_usd_per_month": best.get("usd_per_month"),
            }
        )
    return rows


def _bar(frac: float, width: int = 5) -> str:
    full = max(0, min(width, round(frac * width)))
    return "█" * full + "·" * (width - full)


def sweep_table(data: dict[str, Any]) -> Group:
    var, unit = data["variable"], data["unit"]
    t = Table(title=f"sweep of {var} ({unit})")
    for col in ("point", var, "USD/month", "GPUs", "configuration (utilization)", "vs co-located", ""):
        t.add_column(col, justify="left" if col.startswith("configuration") or col == "" else "right")
    for i, p in enumerate(data["points"]):
        if p["status"] != "ok":
            t.add_row(str(i + 1), f"{p['value']:g}", p["status"], "-", p.get("message", ""), "-", "")
            continue
        pools = "; ".join(
            f"{q['role']} {q['replicas']}x TP{q['tp']} {q['gpu']} {_bar(u)} {100 * u:.0f}%"
            for q in p["pools"]
            for u in (q["utilization_frac"],)
        )
        s = p["savings_frac"]
        t.add_row(
            str(i + 1),
            f"{p['value']:g}",
            f"{p['usd_per_month']:,.0f}",
            str(p["num_gpus"]),
            pools,
            "-" if s is None else f"{'saves' if s >= 0 else 'costs'} {abs(s) * 100:.1f}%",
            "*" if p["configuration_changed"] else "",
        )
    costs = [p.get("usd_per_month") if p["status"] == "ok" else None for p in data["points"]]
    have = [c for c in costs if c is not None]
    parts: list[Any] = [t, "* the configuration (pool roles, GPUs, TP) changes at this point"]
    parts += crossing_lines(data)
    if have:
        parts.append(f"cost  {sparkline(costs)}  {min(have):,.0f} to {max(have):,.0f} USD/month")
    return Group(*parts)


def sweep_markdown(data: dict[str, Any], engine_line: str | None = None) -> str:
    var, unit = data["variable"], data["unit"]
    lines = [
        f"## planner sweep: {var} ({unit})",
        "",
        *([engine_line, ""] if engine_line else []),
        f"| point | {var} | USD/month | GPUs | configuration | vs co-located |",
        "|--:|--:|--:|--:|---|--:|",
    ]
    for i, p in enumerate(data["points"]):
        if p["status"] != "ok":
            lines.append(f"| {i + 1} | {p['value']:g} | {p['status']} | - | {p.get('message', '')} | - |")
            continue
        s = p["savings_frac"]
        mark = " *" if p["configuration_changed"] else ""
        lines.append(
            f"| {i + 1} | {p['value']:g} | {p['usd_per_month']:,.0f} | {p['num_gpus']} | {p['configuration']}{mark} | "
            f"{'-' if s is None else f'{100 * s:.1f}%'} |"
        )
    lines += ["", *crossing_lines(data)]
    return "\n".join(lines) + "\n"
