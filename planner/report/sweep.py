"""Tables, markdown, CSV and Parquet rows and the sparkline of ``planner sweep`` (one axis or several)."""

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
    parts += _configuration_lines(data)
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
    lines += ["", *crossing_lines(data), *_configuration_lines(data)]
    return "\n".join(lines) + "\n"


def _configuration_lines(data: dict[str, Any]) -> list[str]:
    """The distinct configurations of a one-axis sweep (a result saved before the summary existed has none)."""
    return configuration_lines(data) if "summary" in data else []


# ---------------------------------------------------------------------------------------------
# Several axes (and the columns every sweep's CSV and Parquet rows have)


def value_text(value: Any) -> str:
    """An axis value as tables print it: numbers ``:g``, a list of ids ``a|b``, ``null`` (an optional field
    unset by the sweep)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "|".join(str(v) for v in value)
    return str(value)


def axis_cell(point: dict[str, Any], column: str) -> str:
    """A point's value of an axis column; empty for a scenario that leaves the variable as the document has it."""
    if column in point["values"]:
        return value_text(point["values"][column])
    settings = point.get("settings", {})
    return value_text(settings[column]) if column in settings else ""


def axis_columns(data: dict[str, Any]) -> list[str]:
    """One column per axis; a scenario axis adds a column per variable its scenarios set."""
    cols: list[str] = []
    for axis in data.get("axes", []):
        cols.append(axis["variable"])
        for sc in axis.get("scenarios", []):
            cols += [k for k in sc["settings"] if k not in cols]
    return cols


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return "|".join(str(v) for v in value)
    return value


def table_rows(data: dict[str, Any], engine_label: str) -> list[dict[str, Any]]:
    """One row per point (CSV and Parquet): ``point`` (from 1), every axis as its own column, the figures, and
    ``engine`` (the point's ``ID@VERSION``; it is also the column of an engine axis)."""
    cols = axis_columns(data)
    rows = []
    for i, p in enumerate(data["points"]):
        ok = p["status"] == "ok"
        best = p.get("best_colocated") or {}
        row: dict[str, Any] = {"point": i + 1}
        for c in cols:
            row[c] = _cell(p["values"].get(c, p.get("settings", {}).get(c)))
        row.update(
            {
                "status": p["status"],
                "usd_per_month": p.get("usd_per_month"),
                "usd_per_hour": p.get("usd_per_hour"),
                "num_gpus": p.get("num_gpus"),
                "configuration_id": p.get("configuration_id"),
                "configuration": p.get("configuration") if ok else None,
                "disaggregated": p.get("disaggregated"),
                "savings_frac": p.get("savings_frac"),
                "best_colocated_usd_per_month": best.get("usd_per_month"),
                "ttft_at_slo_ms": p.get("ttft_at_slo_ms"),
                "tpot_at_slo_ms": p.get("tpot_at_slo_ms"),
                "message": p.get("message"),
            }
        )
        row["engine"] = p.get("engine") or engine_label
        rows.append(row)
    return rows


def parquet_bytes(rows: Sequence[dict[str, Any]], metadata: dict[str, str]) -> bytes:
    """The rows as one Parquet file (pyarrow): a column's type is bool, int64, float64 or string as its values
    are (None is null); ``metadata`` goes in the file's key-value metadata. No timestamps: the same rows give the
    same bytes (pyarrow records its own version in ``created_by``)."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    arrays = []
    for c in columns:
        values = [row.get(c) for row in rows]
        have = [v for v in values if v is not None]
        if have and all(isinstance(v, bool) for v in have):
            arrays.append(pa.array(values, type=pa.bool_()))
        elif have and all(isinstance(v, int) and not isinstance(v, bool) for v in have):
            arrays.append(pa.array(values, type=pa.int64()))
        elif have and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in have):
            arrays.append(pa.array([None if v is None else float(v) for v in values], type=pa.float64()))
        else:
            arrays.append(pa.array([None if v is None else str(_cell(v)) for v in values], type=pa.string()))
    table = pa.Table.from_arrays(arrays, names=columns).replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", store_schema=True)
    out: bytes = sink.getvalue().to_pybytes()
    return out


def _values_text(values: Sequence[Any], limit: int = 6) -> str:
    shown = [value_text(v) for v in values[:limit]]
    return ", ".join(shown) + (f", ... ({len(values)} values)" if len(values) > limit else "")


def _at_text(at: dict[str, Any]) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in at.items())


def configuration_lines(data: dict[str, Any]) -> list[str]:
    """The distinct configurations over the grid, each with its id, shape and the region (points, and per axis the
    values) it covers."""
    summary = data["summary"]
    n_ok = sum(1 for p in data["points"] if p["status"] == "ok")
    lines = [f"configurations: {summary['num_configurations']} distinct over {n_ok} of {len(data['points'])} points with a plan"]
    for c in summary["configurations"]:
        region = "; ".join(f"{k} {_values_text(v)}" for k, v in c["values"].items())
        kind = "disaggregated" if c["disaggregated"] else "co-located"
        lines.append(f"  {c['id']} {c['shape']} ({kind}): {c['num_points']} point(s): {region}")
    return lines


def summary_lines(data: dict[str, Any], limit: int = 8) -> list[str]:
    """Where the configuration changes across the grid: the distinct configurations with the region each covers,
    then per axis the values between which the shape changes (others held fixed) and where disaggregation starts or
    stops paying."""
    summary = data["summary"]
    lines = configuration_lines(data)
    multi = len(summary["axes"]) > 1
    for axis in summary["axes"]:
        var = axis["variable"]
        changes, crossings_ = axis["configuration_changes"], axis["disaggregation_crossings"]
        if not changes:
            lines.append(f"along {var}: the configuration does not change")
        for ch in changes[:limit]:
            a, b = ch["between"]
            at = f" at {_at_text(ch['at'])}" if multi and ch["at"] else ""
            lines.append(f"along {var}: {ch['from']} -> {ch['to']} between {value_text(a)} and {value_text(b)}{at}")
        if len(changes) > limit:
            lines.append(f"along {var}: ... and {len(changes) - limit} more configuration changes (JSON: data.summary)")
        for x in crossings_[:limit]:
            a, b = x["between"]
            at = f" at {_at_text(x['at'])}" if multi and x["at"] else ""
            lines.append(f"along {var}: disaggregation {x['kind']} paying between {value_text(a)} and {value_text(b)}{at}")
        if len(crossings_) > limit:
            lines.append(f"along {var}: ... and {len(crossings_) - limit} more crossings (JSON: data.summary)")
    return lines


def grid_table(data: dict[str, Any]) -> Group:
    """The table of a sweep of several axes (or scenarios): one row per point, a column per axis."""
    cols = axis_columns(data)
    sizes = " x ".join(str(len(a["values"])) for a in data["axes"])
    t = Table(title=f"sweep of {', '.join(a['variable'] for a in data['axes'])} ({sizes} = {len(data['points'])} points)")
    for col in ("point", *cols, "USD/month", "GPUs", "config", "replicas", "savings"):
        left = col in ("config", "replicas", *cols)
        t.add_column(col, justify="left" if left else "right", overflow="fold")
    for i, p in enumerate(data["points"]):
        axis_cells = [axis_cell(p, c) for c in cols]
        if p["status"] != "ok":
            t.add_row(str(i + 1), *axis_cells, p["status"], "-", "-", p.get("message", ""), "-")
            continue
        t.add_row(
            str(i + 1),
            *axis_cells,
            f"{p['usd_per_month']:,.0f}",
            str(p["num_gpus"]),
            p["configuration_id"] or "",
            replicas_text(p),
            "-" if p["savings_frac"] is None else f"{100 * p['savings_frac']:.1f}%",
        )
    parts: list[Any] = [
        t,
        "config: the configuration's id (below); replicas: P prefill, D decode, C co-located; savings: against the best "
        "co-located baseline",
        *summary_lines(data),
    ]
    costs = [p.get("usd_per_month") if p["status"] == "ok" else None for p in data["points"]]
    have = [c for c in costs if c is not None]
    if have:
        parts.append(f"cost  {min(have):,.0f} to {max(have):,.0f} USD/month")
    return Group(*parts)


def replicas_text(point: dict[str, Any]) -> str:
    """Replicas per pool of a point, ``P4 D3`` (prefill, decode, C co-located): the rest of the shape is its
    configuration id's."""
    return " ".join(f"{q['role'][0].upper()}{q['replicas']}" for q in point["pools"])


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def grid_markdown(data: dict[str, Any], engine_line: str | None = None) -> str:
    cols = axis_columns(data)
    lines = [
        f"## planner sweep: {', '.join(a['variable'] for a in data['axes'])} ({len(data['points'])} points)",
        "",
        *([engine_line, ""] if engine_line else []),
        "| point | " + " | ".join(_md(c) for c in cols) + " | USD/month | GPUs | config | configuration | vs co-located |",
        "|--:|" + "---|" * len(cols) + "--:|--:|---|---|--:|",
    ]
    for i, p in enumerate(data["points"]):
        cells = " | ".join(_md(axis_cell(p, c)) for c in cols)
        if p["status"] != "ok":
            lines.append(f"| {i + 1} | {cells} | {p['status']} | - | - | {_md(p.get('message', ''))} | - |")
            continue
        s = p["savings_frac"]
        lines.append(
            f"| {i + 1} | {cells} | {p['usd_per_month']:,.0f} | {p['num_gpus']} | {p['configuration_id']} | "
            f"{_md(p['configuration'])} | {'-' if s is None else f'{100 * s:.1f}%'} |"
        )
    lines += ["", *(f"- {_md(line.strip())}" for line in summary_lines(data))]
    return "\n".join(lines) + "\n"


def one_axis(data: dict[str, Any]) -> bool:
    """A sweep of one numeric --vary axis (the one-axis table, markdown and HTML charts); a result saved before
    multi-axis sweeps has no ``axes`` and is one."""
    if "variable" not in data:
        return False
    numbers = all(isinstance(p.get("value"), (int, float)) and not isinstance(p.get("value"), bool) for p in data["points"])
    axes = data.get("axes")
    return numbers and (not axes or axes[0].get("kind", "number") in ("number", "integer"))
