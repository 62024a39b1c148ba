"""Refit each engine's MoE serving factors from the committed rows and print them with their errors.

    python bench/fit_moe_serving.py [--engine E ...] [--write]

Rows: catalogs/measurements/aiconfigurator/silicon_sample_moe.csv (aiconfigurator-core 0.12.0, Apache-2.0),
aggregated and disaggregated, of the catalog's MoE models. Training split: every row not on a GPU of
planner.calibrate.moe_fit.HELD_OUT_GPUS (H200); the held-out rows are only reported, never fitted on. Each row keeps
its GPU's dense factors (catalogs/efficiency/<engine>.yaml without its moe_serving block); the fit adds the four
factors of planner.calibrate.moe_fit. Printed per engine: the factors and their one-sigma, then rows and median
|error| of the mean TTFT and TPOT, before (dense factors) and after, per split and mode. ``--write`` puts the
factors, exactly as printed, in the moe_serving block of each engine's catalogs/efficiency/<engine>.yaml.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from planner import api
from planner.calibrate.moe_fit import (
    HELD_OUT_GPUS,
    MOE_PARAMS,
    CaseError,
    case_errors,
    factors_of,
    fit_moe,
    split_of,
    summary,
    without_moe,
)
from planner.io.catalog import load_catalog, select_engine
from planner.io.efficiency import write_moe_serving
from planner.io.silicon import read_silicon, with_corrected_layouts

ROOT = Path(__file__).resolve().parent.parent
SILICON_MOE = ROOT / "catalogs/measurements/aiconfigurator/silicon_sample_moe.csv"
SHOWN = "catalogs/measurements/aiconfigurator/silicon_sample_moe.csv"
ENGINES = ("vllm", "sglang", "trtllm")
SOURCE = "aiconfigurator-core-0-12-0"
AS_OF = "2026-12-02"
DIGITS = 4  # significant digits of the written factors (the errors are evaluated at the rounded values)


def rounded(x: float) -> float:
    return float(f"{float(x):.{DIGITS}g}")


def describe(errs: list[CaseError]) -> str:
    n, ttft, tpot = summary(errs)
    return f"{n:4d} rows  TTFT {100 * ttft:5.1f} %  TPOT {100 * tpot:5.1f} %" if n else "   0 rows"


def rows_text(errs: list[CaseError], split: str) -> str:
    models = sorted({e.measurement.raw_model for e in errs})
    gpus = sorted({e.measurement.gpu or "" for e in errs})
    modes = sorted({e.mode for e in errs})
    return (
        f"{SHOWN}, {split} split (every row not on {', '.join(HELD_OUT_GPUS)} is training), {len(errs)} rows "
        f"({'/'.join(modes)}) of {', '.join(models)} on {', '.join(gpus)}; copied 2026-12-02"
    )


def split_errors(errs: list[CaseError]) -> dict[str, float | int]:
    n, ttft, tpot = summary(errs)
    return {"rows": n, "ttft_median_abs_error_frac": round(float(ttft), 4), "tpot_median_abs_error_frac": round(float(tpot), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", action="append", choices=ENGINES, help="only this engine (repeatable)")
    ap.add_argument("--write", action="store_true", help="write the factors into catalogs/efficiency/<engine>.yaml")
    args = ap.parse_args()
    base = without_moe(load_catalog())
    rows, corrected = with_corrected_layouts(read_silicon(SILICON_MOE, base.models))
    rows = [r for r in rows if r.model is not None and base.models[r.model].is_moe]
    print(f"{corrected} aggregated rows with a recorded worker wider than a node read at their twins' layout (corrected_layout)")
    for engine in args.engine or ENGINES:
        cat = select_engine(base, engine)
        cases, skipped = api.moe_serving_cases(rows, cat)
        train = [c for c in cases if split_of(c.measurement) == "train"]
        held = [c for c in cases if split_of(c.measurement) == "held-out"]
        fit = fit_moe(train)
        moe = fit.factors
        values = {name: rounded(getattr(moe, name)) for name in MOE_PARAMS}
        sigmas = {name: rounded(s) for name, s in sorted(fit.sigmas.items())}
        moe = factors_of([values[n] for n in MOE_PARAMS])
        print(f"{engine}: {len(cases)} MoE rows represented ({len(train)} training, {len(held)} held out), {len(skipped)} not")
        for name in MOE_PARAMS:
            sig = f" +- {sigmas[name]:.4g}" if name in sigmas else " (at a bound: no sigma)"
            print(f"  {name:20s} {values[name]:.4g}{sig}")
        results: dict[str, dict[str, list[CaseError]]] = {}
        for split, group in (("train", train), ("held-out", held)):
            before, after = list(case_errors(group)), list(case_errors(group, moe))
            results[split] = {"before": before, "after": after}
            for mode in ("agg", "disagg", "all"):
                b = [e for e in before if mode in ("all", e.mode)]
                a = [e for e in after if mode in ("all", e.mode)]
                if b:
                    print(f"  {split:8s} {mode:6s} before {describe(b)}  |  after {describe(a)}")
        if args.write:
            tr, ho = results["train"]["after"], results["held-out"]["after"]
            write_moe_serving(
                ROOT / f"catalogs/efficiency/{engine}.yaml",
                {
                    **values,
                    "fitted_on": rows_text(tr, "training"),
                    "sigma": sigmas,
                    "errors": {"train": split_errors(tr), "held_out": split_errors(ho)},
                    "source": SOURCE,
                    "as_of": AS_OF,
                    "note": (
                        "Fitted end to end by bench/fit_moe_serving.py (planner/calibrate/moe_fit.py) on the training "
                        "split; applied to MoE models only, on top of the dense factors. Held-out rows (every H200 row) "
                        "are reported, never fitted on. One set for every GPU and precision of the engine: on a GPU "
                        "or model with no MoE row the values are an assumption carried over."
                    ),
                },
            )  # fmt: skip
            print(f"  wrote catalogs/efficiency/{engine}.yaml moe_serving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
