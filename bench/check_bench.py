"""Speed of `planner check`: each example proposal end to end (a fresh `python -m planner check`
subprocess: interpreter start, imports, evaluation, the optimal plan for EFF001, output).

    python bench/check_bench.py [--repeats 5] [--format json]

Prints, per proposal, the exit code and the median and worst wall time; it is not a test.
The target (issue #5) is <= 2 s per proposal on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROPOSALS = sorted((ROOT / "examples" / "proposals").glob("*.yaml"))
TARGET_S = 2.0


def wall_s(path: Path, fmt: str, repeats: int) -> tuple[int, list[float]]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    times, code = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "planner", "check", str(path), "--format", fmt], capture_output=True, cwd=ROOT, env=env
        )
        times.append(time.perf_counter() - start)
        code = proc.returncode
        if code not in (0, 1):
            raise SystemExit(f"{path}: exit {code}: {proc.stderr.decode()}")
    return code, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--format", default="json", choices=["table", "json", "markdown", "github", "csv"])
    args = parser.parse_args()
    print(f"planner check, end to end, {args.repeats} runs each, --format {args.format}, {os.cpu_count()} CPUs")
    print(f"{'proposal':<34} {'exit':>4} {'median s':>9} {'max s':>7}")
    worst = 0.0
    for path in PROPOSALS:
        code, times = wall_s(path, args.format, args.repeats)
        worst = max(worst, max(times))
        print(f"{path.name:<34} {code:>4} {statistics.median(times):>9.2f} {max(times):>7.2f}")
    verdict = "within" if worst <= TARGET_S else "OVER"
    print(f"slowest run {worst:.2f} s: {verdict} the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
