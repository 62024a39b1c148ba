"""The hardening fuzz bench: the properties of tests/test_fuzz_inputs.py and tests/test_fuzz_more.py
(and tests/test_fuzz_engine.py: type ``engine``, the SGLang and vLLM benchmark files) with many
more examples, counting outcomes per input type instead of stopping at the first failure.

    python bench/fuzz.py --examples 10000 [--types workload,yaml,catalog,proposal,trace,measurements,flags,engine]
                         [--time-budget-s 600] [--seed 0]

Per input type it prints: tried, passed (loaded: a correct result), rejected cleanly (one
single-line PlannerError naming the file, or for flags exit 2/3 with one ``error:`` line) and
crashed (anything else: another exception, a multi-line error, an error that does not name the
file, an out-of-range value loaded, a traceback or exit 70). The first few crashes are printed.
A type stops early when its time budget is spent (the counts say how many were tried). Exit 1 if
anything crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import test_fuzz_engine as fe  # noqa: E402
import test_fuzz_inputs as fi  # noqa: E402
import test_fuzz_more as fm  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from planner.errors import PlannerError  # noqa: E402

SHOW = 5


class _OutOfTime(Exception):
    pass


def _workload(case: tuple[tuple[Any, ...], Any, bool]) -> str:
    from planner.io.workload import parse_workload, to_domain

    path, value, delete = case
    doc = fi._mutate(fi.VALID_WORKLOAD, path, value, delete) if path else value

    def load() -> None:
        to_domain(parse_workload(doc, "fuzz.yaml"), fm._catalog(), "fuzz.yaml")

    return fm.expect_clean(load, ("fuzz.yaml",))


def _yaml(text: str) -> str:
    from planner.io.yamlio import loads

    return fm.expect_clean(lambda: loads(text, "fuzz.yaml"), ("fuzz.yaml",))


def _catalog_case(case: tuple[str, str, Any]) -> str:
    import yaml

    from planner.io.catalog import load_catalog
    from planner.io.yamlio import dumps

    kind, key, value = case
    doc = yaml.safe_load((REPO / "catalogs" / f"{kind}.yaml").read_text())
    doc[kind][sorted(doc[kind])[0]][key] = value
    with tempfile.TemporaryDirectory() as tmp:
        try:
            (Path(tmp) / f"{kind}.yaml").write_text(dumps(doc))
        except (ValueError, yaml.YAMLError):
            return "loaded"
        return fm.expect_clean(lambda: load_catalog([Path(tmp)]), (tmp,))


def _run_main(argv: list[str]) -> tuple[int, str, str]:
    from planner.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


TYPES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], str]]] = {
    "workload": (
        st.one_of(
            st.tuples(st.sampled_from(fi.PATHS), fm.VALUES, st.booleans()),
            st.tuples(st.just(()), fm.VALUES, st.just(False)),
        ),
        _workload,
    ),
    "yaml": (st.text(max_size=200), _yaml),
    "catalog": (
        st.tuples(st.sampled_from(["gpus", "links", "models"]), st.text(min_size=1, max_size=12), fm.VALUES),
        _catalog_case,
    ),
    "proposal": (fm.PROPOSAL_CASES, fm.check_proposal),
    "trace": (fm.TRACE_CASES, fm.check_trace),
    "measurements": (fm.MEASUREMENT_CASES, fm.check_measurements),
    "flags": (fm.FLAG_CASES, lambda argv: fm.check_flags(argv, _run_main)),
    "engine": (fe.ENGINE_CASES, fe.check_engine),
}


def run_type(name: str, examples: int, budget_s: float, seed: int) -> dict[str, Any]:
    strategy, check = TYPES[name]
    counts = {"tried": 0, "loaded": 0, "rejected": 0, "crashed": 0}
    crashes: list[str] = []
    kinds: dict[str, int] = {}
    deadline = time.monotonic() + budget_s

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def prop(case: Any) -> None:
        if time.monotonic() > deadline:
            raise _OutOfTime
        counts["tried"] += 1
        try:
            counts[check(case)] += 1
        except (KeyboardInterrupt, _OutOfTime):
            raise
        except BaseException as exc:  # everything else is a crash, counted and shown
            counts["crashed"] += 1
            if isinstance(exc, fm.Crash):
                key = str(exc)[:80]
            elif isinstance(exc, PlannerError):
                key = f"{type(exc).__name__}: {exc.message[:80]}"
            else:
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                key = f"{type(exc).__name__} at {Path(tb.filename).name}:{tb.lineno}"
            kinds[key] = kinds.get(key, 0) + 1
            if len(crashes) < SHOW or (kinds[key] == 1 and len(crashes) < 3 * SHOW):
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                crashes.append(f"{key}\n      input: {case!r:.400}\n      {detail[:600]}")

    prop._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    start = time.monotonic()
    with contextlib.suppress(_OutOfTime):
        prop()
    return {**counts, "seconds": time.monotonic() - start, "crashes": crashes, "kinds": kinds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="generated inputs per type (default 10,000)")
    parser.add_argument("--types", default=",".join(TYPES), help=f"comma-separated subset of {','.join(TYPES)}")
    parser.add_argument("--time-budget-s", type=float, default=600.0, help="stop a type after this long (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = [t.strip() for t in args.types.split(",") if t.strip()]
    unknown = [t for t in names if t not in TYPES]
    if unknown:
        parser.error(f"unknown type(s) {', '.join(unknown)}; choose from {', '.join(TYPES)}")
    print(f"{'type':<14}{'tried':>8}{'loaded':>8}{'rejected':>10}{'crashed':>9}{'seconds':>9}", flush=True)
    total_crashed = 0
    for name in names:
        r = run_type(name, args.examples, args.time_budget_s, args.seed)
        total_crashed += r["crashed"]
        print(f"{name:<14}{r['tried']:>8}{r['loaded']:>8}{r['rejected']:>10}{r['crashed']:>9}{r['seconds']:>9.1f}", flush=True)
        kinds = sorted(r["kinds"].items(), key=lambda kv: -kv[1])
        for key, n in kinds[:10]:
            print(f"    {n:>6} x {key}")
        if len(kinds) > 10:
            print(f"    ... and {len(kinds) - 10} more kinds")
        for c in r["crashes"]:
            print(f"  crash: {c}")
    return 1 if total_crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
