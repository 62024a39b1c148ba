"""Speed of ``planner size --schedule``: a day-long schedule (24 hourly plans, each re-verified) of the 20-class
workload of ``bench/size_bench.py`` over every catalog GPU and link, each class with its own daily shape.

    python bench/schedule_bench.py [--repeats 1] [--growth-months 0]

Prints its figures; it is not a test. The shapes are planner's synthetic diurnal cycle (``trace synth --diurnal``:
1 + 0.5·sin(2πt/24 h), averaged per hour), class i shifted by 5·i hours: a spread of peaks, not a measurement.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from size_bench import twenty_classes

from planner import api
from planner.optimize import sizing
from planner.optimize.schedule import day_schedule

AMPLITUDE = 0.5


def shape(shift_h: int) -> list[float]:
    """The hourly means of 1 + A·sin(2π(t − shift)/24 h) over each hour of the day."""
    out = []
    for h in range(24):
        a, b = 2 * math.pi * (h - shift_h) / 24, 2 * math.pi * (h + 1 - shift_h) / 24
        out.append(1 + AMPLITUDE * 24 / (2 * math.pi) * (math.cos(a) - math.cos(b)))
    return out


def day_workload(growth_months: int = 0) -> dict[str, Any]:
    doc = twenty_classes()
    for i, cls in enumerate(doc["classes"]):  # type: ignore[union-attr]
        cls["rate_profile"] = {"hourly_rps": shape((5 * i) % 24)}
    if growth_months:
        doc["growth"] = {"per_month_frac": 0.05, "months": growth_months}
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--growth-months", type=int, default=0, help="also plan purchases over this many months")
    args = parser.parse_args()
    catalog = api.load_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "twenty_classes_day.yaml"
        path.write_text(yaml.safe_dump(day_workload(args.growth_months), sort_keys=False))
        workload = api.resolve_workload(api.load_workload_spec(path), catalog, str(path))
    peak_s, day_s, peak_cpu, day_cpu = [], [], [], []
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        peak = sizing.size(workload, catalog, baselines=False)
        mid, mid_cpu = time.perf_counter(), time.process_time()
        schedule = day_schedule(workload, catalog, peak.plan)
        end, end_cpu = time.perf_counter(), time.process_time()
        peak_s.append(mid - start)
        day_s.append(end - mid)
        peak_cpu.append(mid_cpu - start_cpu)
        day_cpu.append(end_cpu - mid_cpu)
    load = os.getloadavg()[0]
    print(f"20 classes x 24 hours over every catalog GPU and link ({os.cpu_count()} cores, load average {load:.1f} at the end)")
    print(f"{'':<46}{'wall s':>8}{'CPU s':>8}  (CPU: this process; HiGHS runs single-threaded in it)")
    peak_label = "peak plan (planner size MIP, no baselines)"
    print(f"{peak_label:<46}{statistics.median(peak_s):>8.1f}{statistics.median(peak_cpu):>8.1f}")
    day = f"day schedule: 24 hours, {schedule.solves} MIPs"
    print(f"{day:<46}{statistics.median(day_s):>8.1f}{statistics.median(day_cpu):>8.1f}")
    both = statistics.median(p + d for p, d in zip(peak_s, day_s, strict=True))
    both_cpu = statistics.median(p + d for p, d in zip(peak_cpu, day_cpu, strict=True))
    print(f"{'both':<46}{both:>8.1f}{both_cpu:>8.1f}")
    if schedule.purchases is not None:
        print(f"growth: {len(schedule.purchases.months)} months, hourly plans made for {list(schedule.purchases.planned_months)}")
    sources: dict[str, int] = {}
    for h in schedule.hours:
        sources[h.source] = sources.get(h.source, 0) + 1
    print(f"hour plans by source: {dict(sorted(sources.items()))}")
    print(
        f"USD/day: fleet {schedule.fleet_usd_per_day:,.0f} ({schedule.fleet_mode}), peak on demand "
        f"{schedule.peak_on_demand_usd_per_day:,.0f}, scaled {schedule.scaled_usd_per_day:,.0f}, coupled "
        f"{schedule.coupled_usd_per_day:,.0f}; apart share {schedule.apart_share_frac}"
    )
    for w in schedule.warnings:
        print(f"warning: {w}")


if __name__ == "__main__":
    main()
