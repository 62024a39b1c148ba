"""Speed of `planner simulate`: the chatbot example's optimal plan with 100,000 requests (target:
<= 30 s on a 2-core machine), each example's plan at 20,000 requests, and a SimPy comparison of
the bare event mechanics when SimPy is installed.

    python bench/simulate_bench.py [--requests 100000] [--repeats 1]

Prints requests/s and events/s; it is not a test.
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import time
from pathlib import Path

from planner import api
from planner.sim import SimOptions, simulate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "workloads").glob("*.yaml"))


def plan(path: Path) -> tuple[object, object, object]:
    cat = api.load_catalog(())
    wl = api.resolve_workload(api.load_workload_spec(path), cat, str(path))
    return wl, api.size(wl, cat).plan.deployment, cat


def bench(path: Path, requests: int, repeats: int) -> None:
    wl, dep, cat = plan(path)
    walls = []
    sim = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim = simulate(wl, dep, cat, SimOptions(requests=requests, seed=1))  # type: ignore[arg-type]
        walls.append(time.perf_counter() - t0)
    assert sim is not None
    wall = statistics.median(walls)
    ev = sim.result.events
    print(
        f"{path.stem:24s} {requests:>9,d} requests  {wall:7.2f} s  {requests / wall:>9,.0f} req/s  "
        f"{ev:>11,d} events  {ev / wall:>11,.0f} events/s  attainment {sim.overall.slo_attainment_frac:.4f}"
    )


def heap_vs_simpy(n: int = 200_000) -> None:
    """The same M/D/1 loop (n arrivals, one server) as a heapq loop and as SimPy processes."""
    t0 = time.perf_counter()
    heap: list[tuple[float, int]] = [(i * 1.0, i) for i in range(n)]
    heapq.heapify(heap)
    free_at = 0.0
    while heap:
        t, _ = heapq.heappop(heap)
        free_at = max(free_at, t) + 0.9
    t_heap = time.perf_counter() - t0
    try:
        import simpy  # type: ignore[import-not-found]
    except ImportError:
        print(f"heapq loop: {n / t_heap:,.0f} requests/s (SimPy not installed; see docs/simulate.md)")
        return
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)

    def request(env: simpy.Environment) -> object:
        with server.request() as req:
            yield req
            yield env.timeout(0.9)

    def source(env: simpy.Environment) -> object:
        for _ in range(n):
            env.process(request(env))
            yield env.timeout(1.0)

    t0 = time.perf_counter()
    env.process(source(env))
    env.run()
    t_simpy = time.perf_counter() - t0
    print(f"M/D/1, {n:,} requests: heapq {n / t_heap:,.0f} req/s, SimPy {n / t_simpy:,.0f} req/s ({t_simpy / t_heap:.0f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    bench(ROOT / "examples" / "workloads" / "chatbot.yaml", args.requests, args.repeats)
    for path in EXAMPLES:
        bench(path, 20_000, args.repeats)
    heap_vs_simpy()


if __name__ == "__main__":
    main()
