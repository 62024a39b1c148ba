"""Speed of `planner size`: each example end to end, a 20-class workload over every catalog GPU,
and the MIP's size and solve time per solver (HiGHS vs CBC).

    python bench/size_bench.py [--repeats 3]

Prints its figures; it is not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from planner import api
from planner.optimize import sizing
from planner.optimize.candidates import enumerate_candidates
from planner.optimize.model import build_model
from planner.optimize.solve import solve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "workloads").glob("*.yaml"))


def twenty_classes() -> dict[str, object]:
    """20 classes over a spread of prompt/output lengths, rates and SLOs (every GPU, every link)."""
    classes = []
    for i in range(20):
        isl = 500 * (1 + i % 10)
        osl = 100 + 50 * (i % 7)
        classes.append(
            {
                "name": f"c{i:02d}",
                "rate_rps": 1.0 + (i % 5),
                "interarrival_cv2": 1.0 + 0.25 * (i % 3),
                "input_tokens": {"mean": isl, "p50": 0.8 * isl, "p90": 1.8 * isl, "p99": 3.0 * isl},
                "output_tokens": {"mean": osl, "p50": 0.8 * osl, "p90": 1.8 * osl, "p99": 3.0 * osl},
                "slo": {"ttft_p99_ms": 1500 + 250 * (i % 8), "tpot_p99_ms": 70 + 10 * (i % 4)},
            }
        )
    return {"model": "llama-3.1-70b", "classes": classes}


def cli_wall_s(path: Path, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "planner", "size", str(path), "--format", "json"], capture_output=True)
        out.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{path}: exit {proc.returncode}: {proc.stderr.decode()}")
    return out


def solver_rows(path: Path) -> list[tuple[str, str, int, int, float, float]]:
    """(example, solver, variables, constraints, solve seconds, objective) of the main MIP."""
    catalog = api.load_catalog()
    workload = api.resolve_workload(api.load_workload_spec(path), catalog, str(path))
    gpus = {"prefill": workload.prefill_gpus, "decode": workload.decode_gpus}
    cands = enumerate_candidates(catalog, workload, ("prefill", "decode"), gpus)
    rows = []
    for solver in ("highs", "cbc"):
        built = build_model(workload, catalog, cands, apply_limits=False)
        outcome = solve(built, solver)
        rows.append(
            (
                path.stem,
                solver,
                len(built.problem.variables()),
                len(built.problem.constraints),
                outcome.wall_s,
                outcome.objective or float("nan"),
            )
        )
    return rows


def points_per_cpu_s(path: Path, points: int) -> tuple[float, float]:
    """``planner size``'s library call on ``path``, CPU time per point, two ways: ``cold``, each point with a catalog
    of its own (nothing shared between points); ``study``, the points of a rate sweep (``points`` rates from 0.5x to
    1.5x the workload's) in one process sharing one catalog, as ``planner sweep``'s workers do. Points per CPU-second
    (process time, so other load on the machine counts less than in wall time)."""
    from dataclasses import replace

    spec = api.load_workload_spec(path)
    start = time.process_time()
    for _ in range(points):
        catalog = api.load_catalog()
        sizing.size(api.resolve_workload(spec, catalog, str(path)), catalog)
    cold = points / (time.process_time() - start)
    catalog = api.load_catalog()
    base = api.resolve_workload(spec, catalog, str(path))
    start = time.process_time()
    for i in range(points):
        factor = 0.5 + i / max(1, points - 1)
        wl = replace(base, classes=tuple(replace(c, rate_rps=c.rate_rps * factor) for c in base.classes))
        sizing.size(wl, catalog)
    study = points / (time.process_time() - start)
    return cold, study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--points", type=int, default=20, help="sizing points for the points-per-CPU-second figure")
    parser.add_argument("--points-only", action="store_true", help="only the points-per-CPU-second figure")
    args = parser.parse_args()
    chatbot = ROOT / "examples" / "workloads" / "chatbot.yaml"
    cold, study = points_per_cpu_s(chatbot, args.points)
    print(
        f"chatbot, library call: {cold:.2f} points per CPU-second with a catalog per point, {study:.2f} for "
        f"{args.points} rates of a sweep sharing one catalog"
    )
    if args.points_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "twenty_classes.yaml"
        big.write_text(yaml.safe_dump(twenty_classes(), sort_keys=False))
        print("planner size, process start to report (JSON), seconds")
        print(f"{'workload':<28}{'min':>8}{'median':>8}")
        for path in [*EXAMPLES, big]:
            times = cli_wall_s(path, args.repeats)
            print(f"{path.stem:<28}{min(times):>8.2f}{statistics.median(times):>8.2f}")
        print()
        print("main MIP per solver (no limits, lone-replica capacities): size and solve time")
        print(f"{'workload':<28}{'solver':<8}{'vars':>7}{'cons':>7}{'solve_s':>9}{'objective_usd_per_h':>22}")
        for path in [*EXAMPLES, big]:
            for name, solver, nv, nc, wall, obj in solver_rows(path):
                print(f"{name:<28}{solver:<8}{nv:>7}{nc:>7}{wall:>9.3f}{obj:>22.4f}")
        print()
        catalog = api.load_catalog()
        wl = api.resolve_workload(api.load_workload_spec(big), catalog, "twenty")
        for solver in ("highs", "cbc"):
            start = time.perf_counter()
            result = sizing.size(wl, catalog, solver=solver)  # type: ignore[arg-type]
            wall = time.perf_counter() - start
            print(
                f"20-class over every GPU, library call with {solver}: {wall:.2f} s, plan {result.plan.optimality}, "
                f"{result.plan.num_candidates} candidates, {result.plan.num_variables} variables, "
                f"{result.plan.num_constraints} constraints, {result.plan.evaluation.usd_per_month:,.0f} USD/month"
            )


if __name__ == "__main__":
    main()
