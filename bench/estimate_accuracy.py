"""Accuracy of `planner estimate` against the Splitwise measurements (docs/design.md §5).

Loads the Splitwise Llama-2-70B table and the shipped catalogs, predicts every measured prefill and
decode step with the shipped efficiency factors, and prints the relative error per GPU x TP x phase,
overall, the excluded points with their reason, and the worst points. Not a test: a report.

    python bench/estimate_accuracy.py [--splitwise FILE] [--catalog-dir DIR] [--worst N]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner import api
from planner.calibrate.stepfit import compute_floor_s, predict_s
from planner.domain import Measurement
from planner.io.measurements import read_splitwise

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CSV = REPO / "catalogs" / "measurements" / "splitwise" / "perf_model.csv"


@dataclass(frozen=True)
class Point:
    m: Measurement
    predicted_s: float
    floor_s: float
    excluded: str | None

    @property
    def rel_error(self) -> float:
        return self.predicted_s / self.m.latency_s - 1.0


def evaluate(csv: Path, catalog_dirs: list[Path]) -> list[Point]:
    cat = api.load_catalog(catalog_dirs)
    rows, _ = read_splitwise(csv)
    prelim = []
    for m in rows:
        hw = api.hardware(cat, cat.gpus[m.gpu], m.tp)
        model = cat.models[m.model]
        prelim.append((m, predict_s(m, model, hw), compute_floor_s(m, model, hw)))
    impossible = {m.origin for m, _, floor in prelim if m.latency_s < floor}
    points = []
    for m, pred, floor in prelim:
        why = None
        if m.latency_s < floor:
            why = f"faster than the compute floor ({m.latency_s * 1e3:.1f} ms < {floor * 1e3:.1f} ms at 100 % of peak)"
        elif m.origin in impossible:
            why = "decode of a run whose prefill is below the compute floor"
        points.append(Point(m, pred, floor, why))
    return points


def describe(m: Measurement) -> str:
    shape = f"prompt {m.tokens} x batch {m.batch}" if m.phase == "prefill" else f"batch {m.batch} @ ctx {m.context_tokens:.0f}"
    return f"{m.gpu:<14} TP{m.tp} {m.phase:<7} {shape:<26}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splitwise", type=Path, default=DEFAULT_CSV, help="Splitwise perf_model.csv")
    ap.add_argument("--catalog-dir", type=Path, action="append", default=[], help="extra catalog directory (repeatable)")
    ap.add_argument("--worst", type=int, default=10, help="how many of the worst points to list")
    args = ap.parse_args(argv)

    points = evaluate(args.splitwise, args.catalog_dir)
    used = [p for p in points if p.excluded is None]
    excluded = [p for p in points if p.excluded is not None]

    print(f"Splitwise table: {args.splitwise}")
    print(f"{len(points)} measurements, {len(used)} used, {len(excluded)} excluded\n")

    cells: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for p in used:
        cells[(p.m.gpu, p.m.tp, p.m.phase)].append(abs(p.rel_error))
    print("(a) |relative error| per GPU x TP x phase")
    print(f"{'gpu':<14} {'tp':>3} {'phase':<8} {'points':>6} {'median %':>9} {'worst %':>8} {'bias %':>7}")
    for key in sorted(cells):
        errs = np.array(cells[key])
        signed = np.array([p.rel_error for p in used if (p.m.gpu, p.m.tp, p.m.phase) == key])
        print(
            f"{key[0]:<14} {key[1]:>3} {key[2]:<8} {len(errs):>6} {100 * np.median(errs):>9.1f} {100 * errs.max():>8.1f}"
            f" {100 * np.median(signed):>+7.1f}"
        )

    print("\n(b) overall")
    all_errs = np.array([abs(p.rel_error) for p in used])
    for label, sel in (
        ("all", used),
        ("prefill", [p for p in used if p.m.phase == "prefill"]),
        ("decode", [p for p in used if p.m.phase == "decode"]),
    ):
        e = np.array([abs(p.rel_error) for p in sel])
        print(f"  {label:<8} n={len(e):>3}  median {100 * np.median(e):5.1f} %  worst {100 * e.max():5.1f} %")
    for gpu in sorted({p.m.gpu for p in used}):
        e = np.array([abs(p.rel_error) for p in used if p.m.gpu == gpu])
        print(f"  {gpu:<14} n={len(e):>3}  median {100 * np.median(e):5.1f} %  worst {100 * e.max():5.1f} %")

    print("\n(c) excluded points")
    if not excluded:
        print("  none")
    for p in excluded:
        print(f"  {describe(p.m)} measured {p.m.latency_s * 1e3:8.1f} ms  [{p.m.origin}]  {p.excluded}")

    print(f"\n(d) the {args.worst} worst points")
    for p in sorted(used, key=lambda p: -abs(p.rel_error))[: args.worst]:
        print(
            f"  {describe(p.m)} measured {p.m.latency_s * 1e3:8.1f} ms  predicted {p.predicted_s * 1e3:8.1f} ms"
            f"  error {100 * p.rel_error:+6.1f} %  [{p.m.origin}]"
        )
    print(
        f"\nsummary: median |error| {100 * np.median(all_errs):.1f} %, worst {100 * all_errs.max():.1f} %"
        f" over {len(all_errs)} points"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
