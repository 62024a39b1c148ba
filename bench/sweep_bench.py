"""Speed of ``planner sweep``: a 20-point rate sweep of the chatbot example, process start to JSON.

    python bench/sweep_bench.py [--repeats 3]

Prints the median and worst wall time of ``planner sweep examples/workloads/chatbot.yaml --vary
rate_rps=1:200:20 --format json`` (target: <= 10 s on the 2-core machine), and of ``planner size
--html`` on the same workload (target: about 15 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"


def _time(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "planner", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as d:
        cases = {
            "sweep rate_rps=1:200:20 (20 points)": ["sweep", str(CHATBOT), "--vary", "rate_rps=1:200:20", "-f", "json"],
            "sweep rate_rps=1:25:20 (20 feasible points)": ["sweep", str(CHATBOT), "--vary", "rate_rps=1:25:20", "-f", "json"],
            "size --html (24 internal points)": ["size", str(CHATBOT), "-f", "json", "--html", str(Path(d) / "r.html")],
        }
        for name, args in cases.items():
            times = [_time(args) for _ in range(a.repeats)]
            print(f"{name:48s} median {statistics.median(times):5.2f} s  worst {max(times):5.2f} s")


if __name__ == "__main__":
    main()
