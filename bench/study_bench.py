"""Speed of a 1,000-point study on each execution backend (issue 20's target bench).

    python bench/study_bench.py [--points 1000] [--skip-ray]

A point is one sizing of ``examples/workloads/chatbot.yaml`` (the full ``planner size`` of the changed document:
candidate scoring, the MIP and the baselines) at one (total rate, TTFT target) pair: 25 rates from 2 to 40 req/s
times 40 TTFT p99 targets from 400 to 2,000 ms (``--points N`` takes the first N). The points run through
:func:`planner.api.sweep.run_points` (the library call ``planner sweep`` makes, no process start-up) three ways:
local, one worker (in this process); local, two worker processes; Ray, a local instance of two CPUs started here.
It prints each run's wall time and points per second, Ray's start-up (``ray.init`` of the local instance) and
shut-down, and Ray's overhead per point (Ray's run minus the two-worker local run, over the points), and checks that
the three runs' rows are the same JSON. The load average is printed too: the figures are only as quiet as the
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"


def _grid(n: int) -> list[list[tuple[str, float]]]:
    rates = [2 + (40 - 2) * i / 24 for i in range(25)]
    ttfts = [400 + (2000 - 400) * j / 39 for j in range(40)]
    grid = [[("rate_rps", round(r, 6)), ("ttft_p99_ms", round(t, 6))] for r in rates for t in ttfts]
    return grid[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--skip-ray", action="store_true")
    a = ap.parse_args()

    import yaml

    from planner.api.executor import cpu_count, start_ray
    from planner.api.inputs import load_workload_spec, workload_catalog
    from planner.api.sweep import run_points

    spec = load_workload_spec(CHATBOT)
    catalog = workload_catalog(spec, CHATBOT, (), None)
    doc = yaml.safe_load(CHATBOT.read_text())
    grid = _grid(a.points)
    n = len(grid)
    print(f"{n} points (chatbot.yaml, rate x TTFT target); {cpu_count()} usable CPUs; load average {os.getloadavg()}")

    def timed(label: str, **kwargs: object) -> tuple[float, str]:
        t0 = time.perf_counter()
        rows = run_points(doc, catalog, grid, **kwargs)  # type: ignore[arg-type]
        wall = time.perf_counter() - t0
        ok = sum(1 for r in rows if r["status"] == "ok")
        print(f"{label:34s} {wall:8.1f} s  {n / wall:7.2f} points/s  ({ok} with a plan)", flush=True)
        return wall, json.dumps(rows)

    _, ref = timed("local, 1 worker", jobs=1)
    two, rows2 = timed("local, 2 worker processes", jobs=2)
    assert rows2 == ref, "2 workers gave other rows than 1"
    if a.skip_ray:
        return
    import ray

    t0 = time.perf_counter()
    start_ray(num_cpus=2)
    start_s = time.perf_counter() - t0
    try:
        on_ray, rows_ray = timed("ray, local instance of 2 CPUs", backend="ray", jobs=2)
    finally:
        t0 = time.perf_counter()
        ray.shutdown()
        stop_s = time.perf_counter() - t0
    assert rows_ray == ref, "Ray gave other rows than the local run"
    print(f"ray start-up (ray.init, local, 2 CPUs)  {start_s:.2f} s; shut-down {stop_s:.2f} s")
    print(f"ray overhead per point (ray - local 2 workers) / points: {(on_ray - two) / n * 1e3:+.1f} ms")
    print(f"load average after: {os.getloadavg()}")
    print("rows identical on all three runs: yes")


if __name__ == "__main__":
    main()
