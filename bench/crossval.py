"""Analytic vs simulated latency for every example workload's optimal plan.

    python bench/crossval.py [--requests 20000]

Sizes each example with `planner size`, simulates the plan (join-shortest-queue and one central
queue per pool), and prints per class the analytic TTFT and TPOT at the SLO percentile beside the
simulated ones, with the relative difference (analytic − simulated)/simulated.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from planner import api
from planner.sim import SimOptions

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "workloads").glob("*.yaml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    catalog = api.load_catalog()
    print(
        f"{'example/class':<34}{'routing':<9}{'TTFT an.':>10}{'sim.':>10}{'diff':>8}{'TPOT an.':>10}{'sim.':>8}{'diff':>8}"
        f"{'attain':>8}"
    )
    for path in EXAMPLES:
        workload = api.resolve_workload(api.load_workload_spec(path), catalog, str(path))
        plan = api.size(workload, catalog).plan.deployment
        for routing in ("jsq", "central"):
            sim = api.simulate(workload, plan, catalog, SimOptions(requests=args.requests, routing=routing))
            analytic = {c.name: c for c in sim.analytic.classes}
            for c in sim.classes:
                a = analytic[c.name]
                ttft_a, ttft_s = a.ttft_at_slo_s * 1e3, c.ttft.at_slo * 1e3
                tpot_a, tpot_s = a.tpot_at_slo_s * 1e3, c.tpot.at_slo * 1e3
                name = f"{path.stem}/{c.name}"
                ttft = f"{ttft_a:>10.1f}{ttft_s:>10.1f}{(ttft_a / ttft_s - 1) * 100:>7.1f}%"
                tpot = f"{tpot_a:>10.1f}{tpot_s:>8.1f}{(tpot_a / tpot_s - 1) * 100:>7.1f}%"
                print(f"{name:<34}{routing:<9}{ttft}{tpot}{c.slo_attainment_frac:>8.3f}")


if __name__ == "__main__":
    main()
