"""Data, tables, CSV rows and markdown of ``planner size --schedule`` (``data.schedule``)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from planner.optimize.schedule import DAYS_PER_MONTH, HourPlan, Schedule
from planner.report.sweep import sparkline

ROLES = ("prefill", "decode")


def _pools(h: HourPlan) -> list[dict[str, Any]]:
    return [
        {
            "role": p.role,
            "gpu": p.gpu,
            "tp": p.tp,
            **p.layout_keys(),
            "replicas": p.replicas,
            "num_gpus": p.num_gpus,
            "max_batch": p.max_batch,
            "link": p.link,
        }
        for p in sorted(h.deployment.pools, key=lambda p: (ROLES.index(p.role) if p.role in ROLES else 2, p.key))
    ]


def _counts(h: HourPlan) -> dict[str, Any]:
    return {
        "prefill_replicas": h.replicas("prefill"),
        "decode_replicas": h.replicas("decode"),
        "prefill_gpus": h.gpus("prefill"),
        "decode_gpus": h.gpus("decode"),
        "num_gpus": sum(h.gpus().values()),
        "usd_per_hour": h.usd_per_hour,
        "scale_up_usd": h.scale_up_usd,
    }


def _day(usd_per_day: float, scale_up_usd_per_day: float | None = None) -> dict[str, Any]:
    out = {"usd_per_day": usd_per_day, "usd_per_month": usd_per_day * DAYS_PER_MONTH}
    if scale_up_usd_per_day is not None:
        out["scale_up_usd_per_day"] = scale_up_usd_per_day
    return out


def schedule_data(s: Schedule) -> dict[str, Any]:
    """``data.schedule``: the hours (rates, pools and prices), the fleet, scaled and coupled totals, the saving and
    the share of it from scaling the pools apart; ``months`` (the purchase schedule) with growth."""
    fleet_pools = s.fleet.deployment.pools
    hours = []
    for h, c, factor, fleet_usd in zip(s.hours, s.coupled, s.coupled_factor, s.fleet_usd_per_hour, strict=True):
        hours.append(
            {
                "hour": h.hour,
                "rates_rps": dict(sorted(h.rates_rps.items())),
                "source": h.source,
                **_counts(h),
                "pools": _pools(h),
                "coupled": {"factor": factor, **_counts(c)},
                "fleet_usd_per_hour": fleet_usd,
            }
        )
    data: dict[str, Any] = {
        "lead_time_min": s.lead_time_min,
        "lead_time_assumed": s.lead_time_assumed,
        "flat": s.flat,
        "hours": hours,
        "fleet": {
            "pricing_mode": s.fleet_mode,
            "prefill_replicas": sum(p.replicas for p in fleet_pools if p.role == "prefill"),
            "decode_replicas": sum(p.replicas for p in fleet_pools if p.role == "decode"),
            "num_gpus": sum(p.num_gpus for p in fleet_pools),
            **_day(s.fleet_usd_per_day),
        },
        "peak_on_demand": _day(s.peak_on_demand_usd_per_day),
        "scaled": _day(s.scaled_usd_per_day, sum(h.scale_up_usd for h in s.hours)),
        "coupled": _day(s.coupled_usd_per_day, sum(h.scale_up_usd for h in s.coupled)),
        "saving_usd_per_day": s.saving_usd_per_day,
        "saving_usd_per_month": s.saving_usd_per_day * DAYS_PER_MONTH,
        "saving_frac": s.saving_frac,
        "apart_share_frac": s.apart_share_frac,
        "mip_solves": s.solves,
    }
    if s.purchases is not None:
        p = s.purchases
        data["months"] = [
            {
                "month": m.month,
                "rate_multiplier": m.rate_multiplier,
                "planned_at_month": m.planned_at_month,
                "owned_gpus": dict(m.owned_gpus),
                "bought_gpus": dict(m.bought_gpus),
                "peak_need_gpus": dict(m.peak_need_gpus),
                "owned_gpu_hours_per_day": dict(m.owned_gpu_hours_per_day),
                "on_demand_gpu_hours_per_day": dict(m.on_demand_gpu_hours_per_day),
                "owned_frac": m.owned_frac,
                "owned_usd_per_month": m.owned_usd,
                "on_demand_usd_per_month": m.on_demand_usd,
                "usd_per_month": m.usd,
            }
            for m in p.months
        ]
        data["purchases"] = {
            "horizon_usd": p.total_usd,
            "on_demand_only_usd": p.on_demand_only_usd,
            "saving_usd": p.on_demand_only_usd - p.total_usd,
            "owned_usd_per_gpu_hour": dict(sorted(p.owned_usd_per_gpu_hour.items())),
            "on_demand_usd_per_gpu_hour": dict(sorted(p.on_demand_usd_per_gpu_hour.items())),
            "planned_months": list(p.planned_months),
            "optimality": p.plan.optimality,
        }
    return data


def _gpu_text(gpus: dict[str, Any]) -> str:
    return ", ".join(f"{n} {g}" for g, n in gpus.items() if n) or "-"


def schedule_table(data: dict[str, Any]) -> Group:
    """An hour-by-hour table with sparklines of the replica counts, the day's totals, and the months."""
    hours = data["hours"]
    t = Table(title=f"a day of load: pools scaled hour by hour (on demand, {data['lead_time_min']:g} min scale-up lead time)")
    for col in (
        "hour",
        "req/s",
        "prefill (GPUs)",
        "decode (GPUs)",
        "GPUs",
        "plan",
        "USD*",
        "coupled",
        "coupled USD*",
        "fleet USD/hour",
    ):
        t.add_column(col, justify="left" if col == "plan" else "right")
    for h in hours:
        c = h["coupled"]
        t.add_row(
            f"{h['hour']:02d}",
            f"{sum(h['rates_rps'].values()):.2f}",
            f"{h['prefill_replicas']} ({sum(h['prefill_gpus'].values())})",
            f"{h['decode_replicas']} ({sum(h['decode_gpus'].values())})",
            str(h["num_gpus"]),
            h["source"],
            f"{h['usd_per_hour'] + h['scale_up_usd']:,.2f}",
            f"{c['prefill_replicas']}+{c['decode_replicas']}",
            f"{c['usd_per_hour'] + c['scale_up_usd']:,.2f}",
            f"{h['fleet_usd_per_hour']:,.2f}",
        )
    lines = [
        "* the hour's on-demand price plus the scale-up lead time of the replicas started for it",
        f"prefill replicas by hour  {sparkline([h['prefill_replicas'] for h in hours])}  "
        f"({min(h['prefill_replicas'] for h in hours)}-{max(h['prefill_replicas'] for h in hours)})",
        f"decode replicas by hour   {sparkline([h['decode_replicas'] for h in hours])}  "
        f"({min(h['decode_replicas'] for h in hours)}-{max(h['decode_replicas'] for h in hours)})",
    ]
    totals = Table(title="the day's cost")
    for col in ("deployment", "USD/day", "USD/month"):
        totals.add_column(col, justify="left" if col == "deployment" else "right")
    fleet = data["fleet"]
    for label, row in (
        (f"fleet for the peak, held all day ({fleet['pricing_mode']})", fleet),
        ("the same fleet on demand", data["peak_on_demand"]),
        ("scaled: pools apart, hour by hour (on demand)", data["scaled"]),
        ("coupled: both pools by one factor (on demand)", data["coupled"]),
    ):
        totals.add_row(label, f"{row['usd_per_day']:,.0f}", f"{row['usd_per_month']:,.0f}")
    share = data["apart_share_frac"]
    verdict = "saves" if data["saving_usd_per_day"] >= 0 else "costs"
    summary = (
        f"scaling {verdict} {abs(data['saving_usd_per_day']):,.0f} USD/day against the fleet"
        + (f" ({abs(data['saving_frac']) * 100:.1f}%)" if data["saving_frac"] is not None else "")
        + "; share of the saving of scaling (on demand) that comes from scaling prefill and decode apart: "
        + ("-" if share is None else f"{share * 100:.1f}%")
    )
    parts: list[Any] = [t, *lines, totals, summary]
    if data.get("months"):
        months = Table(title="purchase schedule under growth (owned GPUs serve either pool; the rest on demand)")
        for col in ("month", "load", "owned", "bought", "owned share", "USD/month"):
            months.add_column(col, justify="right" if col != "owned" and col != "bought" else "left")
        for m in data["months"]:
            share_m = m["owned_frac"]
            months.add_row(
                str(m["month"]),
                f"x{m['rate_multiplier']:.3f}",
                _gpu_text(m["owned_gpus"]),
                _gpu_text(m["bought_gpus"]),
                "-" if share_m is None else f"{share_m * 100:.0f}%",
                f"{m['usd_per_month']:,.0f}",
            )
        pur = data["purchases"]
        parts += [
            months,
            f"over {len(data['months'])} months: {pur['horizon_usd']:,.0f} USD with these purchases, "
            f"{pur['on_demand_only_usd']:,.0f} USD all on demand",
        ]
    return Group(*parts)


def schedule_csv_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per hour, one per month (with growth) and one for the day's totals: for spreadsheets."""
    rows: list[dict[str, Any]] = []
    for h in data["hours"]:
        c = h["coupled"]
        row: dict[str, Any] = {"row": "hour", "hour": h["hour"], "source": h["source"]}
        row.update({f"rate_rps.{k}": v for k, v in h["rates_rps"].items()})
        row.update({"prefill_replicas": h["prefill_replicas"], "decode_replicas": h["decode_replicas"]})
        row.update({f"prefill_gpus.{g}": n for g, n in h["prefill_gpus"].items()})
        row.update({f"decode_gpus.{g}": n for g, n in h["decode_gpus"].items()})
        row.update(
            {
                "num_gpus": h["num_gpus"],
                "usd_per_hour": h["usd_per_hour"],
                "scale_up_usd": h["scale_up_usd"],
                "coupled_factor": c["factor"],
                "coupled_prefill_replicas": c["prefill_replicas"],
                "coupled_decode_replicas": c["decode_replicas"],
                "coupled_usd_per_hour": c["usd_per_hour"],
                "coupled_scale_up_usd": c["scale_up_usd"],
                "fleet_usd_per_hour": h["fleet_usd_per_hour"],
            }
        )
        rows.append(row)
    rows.append(
        {
            "row": "day",
            "fleet_usd_per_day": data["fleet"]["usd_per_day"],
            "peak_on_demand_usd_per_day": data["peak_on_demand"]["usd_per_day"],
            "scaled_usd_per_day": data["scaled"]["usd_per_day"],
            "coupled_usd_per_day": data["coupled"]["usd_per_day"],
            "saving_usd_per_day": data["saving_usd_per_day"],
            "apart_share_frac": data["apart_share_frac"],
        }
    )
    for m in data.get("months", []):
        row = {"row": "month", "month": m["month"], "rate_multiplier": m["rate_multiplier"]}
        row["planned_at_month"] = m["planned_at_month"]
        row.update({f"owned_gpus.{g}": n for g, n in m["owned_gpus"].items()})
        row.update({f"bought_gpus.{g}": n for g, n in m["bought_gpus"].items()})
        row.update({f"on_demand_gpu_hours_per_day.{g}": n for g, n in m["on_demand_gpu_hours_per_day"].items()})
        row.update(
            {
                "owned_frac": m["owned_frac"],
                "owned_usd_per_month": m["owned_usd_per_month"],
                "on_demand_usd_per_month": m["on_demand_usd_per_month"],
                "usd_per_month": m["usd_per_month"],
            }
        )
        rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return [{k: row.get(k) for k in columns} for row in rows]  # every row every column: a later column stays last


def schedule_markdown(data: dict[str, Any]) -> str:
    """The schedule as a markdown section (appended to ``planner size``'s)."""
    lines = [
        "",
        "### A day of load (`--schedule`)",
        "",
        "| hour | req/s | prefill | decode | GPUs | plan | USD/hour | coupled USD/hour |",
        "|--:|--:|--:|--:|--:|---|--:|--:|",
    ]
    for h in data["hours"]:
        c = h["coupled"]
        lines.append(
            f"| {h['hour']:02d} | {sum(h['rates_rps'].values()):.2f} | {h['prefill_replicas']} | {h['decode_replicas']} | "
            f"{h['num_gpus']} | {h['source']} | {h['usd_per_hour'] + h['scale_up_usd']:,.2f} | "
            f"{c['usd_per_hour'] + c['scale_up_usd']:,.2f} |"
        )
    share = data["apart_share_frac"]
    lines += [
        "",
        f"Fleet for the peak ({data['fleet']['pricing_mode']}): {data['fleet']['usd_per_day']:,.0f} USD/day; scaled: "
        f"{data['scaled']['usd_per_day']:,.0f}; coupled: {data['coupled']['usd_per_day']:,.0f}; share of the saving "
        f"from scaling the pools apart: {'-' if share is None else f'{share * 100:.1f}%'}.",
    ]
    if data.get("months"):
        lines += ["", "| month | load | owned | bought | owned share | USD/month |", "|--:|--:|---|---|--:|--:|"]
        for m in data["months"]:
            share_m = "-" if m["owned_frac"] is None else f"{m['owned_frac'] * 100:.0f}%"
            lines.append(
                f"| {m['month']} | x{m['rate_multiplier']:.3f} | {_gpu_text(m['owned_gpus'])} | {_gpu_text(m['bought_gpus'])} "
                f"| {share_m} | {m['usd_per_month']:,.0f} |"
            )
    return "\n".join(lines) + "\n"
