"""Profiler speed and memory on a multi-million-row Azure-format trace (docs/design.md §5).

Generates an N-row Azure 2023 CSV (default 10 million rows) in a temporary directory with the synth
generator, then measures, each in a fresh subprocess so peak memory is its own:

* parse: ``planner.io.traces.read_trace`` alone (the same reader the profiler uses: pyarrow's CSV
  reader plus validation and conversion to arrays);
* profile: read + :func:`planner.profile.profile` + JSON envelope (what ``planner profile --format
  json`` does);
* cli: the ``planner profile FILE --format json`` command end to end (interpreter start included).

``--trace-format mooncake`` writes a Mooncake JSONL trace instead (``hash_ids`` of 512-token blocks, half of the
requests sharing a group prefix), which exercises the prefix-reuse path the Azure CSV has no data for.

Run: ``.venv/bin/python bench/profile_bench.py [--rows 10000000] [--repeat 3] [--classes auto] [--trace-format mooncake]``.
Prints rows/s, seconds and peak RSS (ru_maxrss of the subprocess) for each, best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENERATE = """
import json, sys
from pathlib import Path
from planner.io.traces import write_trace
from planner.sim.synth import SynthSpec, synthesize
spec = SynthSpec(requests=int(sys.argv[2]), rate_rps=2000.0, cv2=2.0, isl_mean=2048, osl_mean=256, seed=0)
write_trace(Path(sys.argv[1]), synthesize(spec), sys.argv[3])
print(json.dumps({}))
"""

PARSE = """
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from planner.io.traces import read_trace
tf = read_trace(Path(sys.argv[1]))
dt = time.perf_counter() - t0
print(json.dumps({"s": dt, "rows": tf.rows, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

PROFILE = """
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from planner.io.traces import read_trace
from planner.profile.analysis import profile
from planner.report.envelope import envelope, to_json
from planner.report.profile import profile_data
tf = read_trace(Path(sys.argv[1]))
classes = None if sys.argv[2] == "none" else (sys.argv[2] if sys.argv[2] == "auto" else int(sys.argv[2]))
p = profile(tf.trace, classes=classes)
text = to_json(envelope("profile", "ok", {}, profile_data(p)))
dt = time.perf_counter() - t0
print(json.dumps({"s": dt, "rows": tf.rows, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _cli(path: Path) -> dict[str, float]:
    planner = Path(sys.executable).with_name("planner")
    code = (
        "import json, resource, subprocess, sys, time\n"
        "t0 = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "dt = time.perf_counter() - t0\n"
        'print(json.dumps({"s": dt, "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n'
    )
    return _run(code, str(planner), "profile", str(path), "--format", "json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--classes", default="none", help="none, auto or K (request classes in the profile run)")
    ap.add_argument("--trace-format", choices=("azure", "mooncake"), default="azure", help="trace written and profiled")
    ap.add_argument("--keep", type=Path, default=None, help="write the trace here and keep it")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / ("azure.csv" if args.trace_format == "azure" else "mooncake.jsonl")
        # Generate in a subprocess: a child forked from a big parent would inherit its peak RSS.
        t0 = time.perf_counter()
        _run(GENERATE, str(path), str(args.rows), args.trace_format)
        gen_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        what = f"{args.rows:,} rows, {size_mb:,.0f} MB {args.trace_format} file"
        print(f"trace: {what}, generated in {gen_s:.1f} s ({os.cpu_count()} CPUs)")
        results = {}
        for name, fn in (
            ("parse (read_trace)", lambda: _run(PARSE, str(path))),
            (f"profile (read + stats + JSON, classes={args.classes})", lambda: _run(PROFILE, str(path), args.classes)),
            ("cli (planner profile --format json)", lambda: _cli(path)),
        ):
            runs = [fn() for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["s"])
            peak = max(r["maxrss_kib"] for r in runs)
            results[name] = best
            print(
                f"{name:<52} {best['s']:7.2f} s  {args.rows / best['s'] / 1e6:6.2f} M rows/s  "
                f"peak RSS {peak / 1024 / 1024:5.2f} GiB  (best of {args.repeat})"
            )


if __name__ == "__main__":
    main()
