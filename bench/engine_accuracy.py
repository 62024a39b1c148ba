"""How well `planner estimate serve` predicts measured serving benchmarks of real engines.

    python bench/engine_accuracy.py [--markdown]

Every row of catalogs/measurements/aiconfigurator/silicon_sample_dense.csv (aiconfigurator-core 0.12.0,
Apache-2.0: vLLM, SGLang and TRT-LLM on H100/H200/B200, Llama-3.1-8B/70B and Qwen3-32B at fixed
concurrency) that the catalog can represent is predicted with the engine's profile. Printed per
(GPU, engine, model): rows, median and p90 |error| and signed median of the mean TTFT and TPOT, the
training split (Llama-3.1-8B, Qwen3-32B: the engine overheads were fitted on them) and the held-out
rows (every other model) apart; the long-prompt rows (ISL >= 8000, the co-located interference the
savings rest on) apart again; coverage of the aggregated rows.

Then the MoE rows (catalogs/measurements/aiconfigurator/silicon_sample_moe.csv: DeepSeek-V3/R1,
Qwen3-235B-A22B-FP8 and gpt-oss-120b on H100/H200/B200, aggregated and disaggregated, with their tensor, attention-data
and expert parallelism) and the dense disaggregated rows: coverage with the reasons for the rows not represented, and
the median |error| per split, mode, engine, model and GPU, before (dense factors only) and after each engine's MoE
serving factors (fitted by bench/fit_moe_serving.py on the MoE rows not on H200; every H200 row is held out).

Reference, on data of the same package: aiconfigurator 0.12's own error on its silicon sample is TPOT
median 10.5 %, TTFT median 53.4 % (H100/H200 rows of Llama-3.1-8B and Qwen3-32B; the figures the
project's engine-profiles issue quotes, not re-measured here: the package is not a dependency).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from planner import api
from planner.calibrate.engine_fit import ServeCase, predict
from planner.calibrate.moe_fit import predict as moe_predict
from planner.calibrate.moe_fit import split_of as moe_split_of
from planner.calibrate.moe_fit import without_moe
from planner.domain import Catalog
from planner.io.catalog import load_catalog, select_engine
from planner.io.silicon import read_silicon, with_corrected_layouts

ROOT = Path(__file__).resolve().parent.parent
SILICON = ROOT / "catalogs/measurements/aiconfigurator/silicon_sample_dense.csv"
SILICON_MOE = ROOT / "catalogs/measurements/aiconfigurator/silicon_sample_moe.csv"
ENGINES = ("vllm", "sglang", "trtllm")
AIC_REFERENCE = {"tpot": 0.105, "ttft": 0.534}


def stats(errors: list[float]) -> tuple[float, float, float]:
    a = np.abs(np.array(errors))
    return float(np.median(a)), float(np.percentile(a, 90)), float(statistics.median(errors))


def fmt(errors: list[float]) -> str:
    if not errors:
        return f"{'-':>6} {'-':>6} {'-':>7}"
    med, p90, signed = stats(errors)
    return f"{100 * med:5.1f}% {100 * p90:5.1f}% {100 * signed:+6.1f}%"


def moe_section(base: Catalog, markdown: bool) -> None:
    """The MoE rows (aggregated and disaggregated) and the dense disaggregated rows, beside the dense table: coverage
    with the reasons for the rows not represented, then the error before (dense factors) and after the engines' MoE
    serving factors, training split (every MoE row not on H200) and held-out rows (every H200 row) apart."""
    rows, corrected = with_corrected_layouts(read_silicon(SILICON_MOE, base.models))
    rows += [r for r in read_silicon(SILICON, base.models) if r.mode == "disagg"]
    dense_cat = without_moe(base)
    Key = tuple[str, str, str, str, str]
    errs: dict[Key, list[tuple[tuple[float, float], tuple[float, float]]]] = defaultdict(list)
    skipped: dict[tuple[str, str], int] = defaultdict(int)
    for engine in ENGINES:
        after_cases, skip = api.moe_serving_cases(rows, select_engine(base, engine))
        before_cases, _ = api.moe_serving_cases(rows, select_engine(dense_cat, engine))
        for r, why in skip:
            if why.startswith("tensor-parallel degree must be one of"):
                gpus = r.layout("prefill" if r.mode == "disagg" else "")[0]
                why += f" (a worker of {gpus} GPUs: attention TP across nodes)"
            skipped[(why, r.mode)] += 1
        assert [c.measurement.id for c in after_cases] == [c.measurement.id for c in before_cases]
        for after, before in zip(after_cases, before_cases, strict=True):
            m = after.measurement
            is_moe = m.model is not None and base.models[m.model].is_moe
            split = moe_split_of(m) if is_moe else "dense"
            mode = "agg" if isinstance(after, ServeCase) else "disagg"
            pa, pb = moe_predict(after), moe_predict(before)
            errs[(split, mode, engine, m.model or "", m.gpu or "")].append(
                ((pb[0] / m.ttft_s - 1, pb[1] / m.tpot_s - 1), (pa[0] / m.ttft_s - 1, pa[1] / m.tpot_s - 1))
            )
    covered = sum(len(v) for v in errs.values())
    print()
    print(f"MoE and disaggregated rows: {covered} of {len(rows)} predicted ({100 * covered / len(rows):.1f} %)")
    print(
        f"  {corrected} aggregated rows recorded wider than a node (TP 16/64 or DP-attention 16/64 with MoE 4x4/8x8) are read "
        "at the layout their twins in the file have (4 or 8 GPUs, EP 4/8: planner.io.silicon.corrected_layout)"
    )
    for (why, mode), n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  not represented: {n:4d} {mode:6s} {why}")
    print("  split: training = every MoE row not on h200-sxm (the MoE serving factors were fitted on them), held-out = every")
    print("  h200-sxm row; dense = the dense disaggregated rows (no MoE factor applies). No anchor is quoted for these rows.")
    head = (
        f"{'split':8s} {'mode':6s} {'engine':7s} {'model':16s} {'gpu':9s} {'rows':>4s} | after: TTFT med    p90  signed"
        " | TPOT med    p90  signed | before: TTFT  TPOT"
    )
    print(head)
    print("-" * len(head))
    order = {"train": 0, "held-out": 1, "dense": 2}
    for (split, mode, engine, model, gpu), es in sorted(errs.items(), key=lambda kv: (order[kv[0][0]], kv[0][1:])):
        bt, bp = stats([e[0][0] for e in es])[0], stats([e[0][1] for e in es])[0]
        print(
            f"{split:8s} {mode:6s} {engine:7s} {model:16s} {gpu:9s} {len(es):4d} |        {fmt([e[1][0] for e in es])} | "
            f"{fmt([e[1][1] for e in es])} |  {100 * bt:5.1f}% {100 * bp:5.1f}%"
        )
    groups: dict[tuple[str, str], list[tuple[tuple[float, float], tuple[float, float]]]] = defaultdict(list)
    for (split, mode, _e, _m, _g), es in errs.items():
        for key in ((split, mode), (split, "all")):
            groups[key].extend(es)
        if split != "dense":
            groups[("all MoE", mode)].extend(es)
    summary = []
    for split in ("train", "held-out", "all MoE", "dense"):
        for mode in ("agg", "disagg", "all"):
            es = groups.get((split, mode), [])
            if es:
                before = (stats([e[0][0] for e in es])[0], stats([e[0][1] for e in es])[0])
                after = (stats([e[1][0] for e in es])[0], stats([e[1][1] for e in es])[0])
                summary.append((split, mode, len(es), before, after))
    moe_rows = sum(1 for r in rows if r.model is not None and base.models[r.model].is_moe)
    moe_covered = sum(len(v) for k, v in errs.items() if k[0] != "dense")
    if markdown:
        print("| MoE / disaggregated rows | mode | rows | TTFT before | TTFT after | TPOT before | TPOT after |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for split, mode, n, b, a in summary:
            cells = f"{100 * b[0]:.1f} % | {100 * a[0]:.1f} % | {100 * b[1]:.1f} % | {100 * a[1]:.1f} %"
            print(f"| {split} | {mode} | {n} | {cells} |")
    else:
        print("summary (median |error|, before = dense factors only -> after = with the MoE serving factors):")
        for split, mode, n, b, a in summary:
            print(
                f"  {split:8s} {mode:6s} {n:5d} rows  TTFT {100 * b[0]:5.1f} % -> {100 * a[0]:5.1f} %  "
                f"TPOT {100 * b[1]:5.1f} % -> {100 * a[1]:5.1f} %"
            )
    print(
        f"  coverage of the MoE rows: {moe_covered} of {moe_rows} ({100 * moe_covered / max(moe_rows, 1):.1f} %; target 80 %); "
        "targets on the held-out rows: TPOT median |error| <= 15 %, TTFT <= 30 %"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print the summary as a markdown table (for the README)")
    ap.add_argument("--moe-only", action="store_true", help="only the MoE and disaggregated rows")
    args = ap.parse_args()
    base = load_catalog()
    if args.moe_only:
        moe_section(base, args.markdown)
        return 0
    rows = read_silicon(SILICON, base.models)
    dense = [r for r in rows if r.mode == "agg" and r.model in ("llama-3.1-8b", "llama-3.1-70b", "qwen3-32b")]
    groups: dict[tuple[str, str, str, str], list[tuple[float, float, int, int]]] = defaultdict(list)
    split_errs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    long_errs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    covered = 0
    skipped: dict[str, int] = defaultdict(int)
    for engine in ENGINES:
        cat = select_engine(base, engine)
        cases, skip = api.serving_cases([r for r in dense if r.engine == engine], cat)
        for _r, why in skip:
            skipped[why] += 1
        for (gpu, _prec), group in cases.items():
            for case in group:
                m = case.measurement
                p = predict(case)
                e = (p.ttft.mean_s / m.ttft_s - 1.0, p.tpot.mean_s / m.tpot_s - 1.0)
                split = "train" if m.model in api.TRAINING_MODELS else "held-out"
                groups[(split, gpu, engine, m.model or "")].append((*e, m.isl, m.osl))
                split_errs[(split, engine)].append(e)
                split_errs[(split, "all")].append(e)
                if m.isl >= 8000:
                    long_errs[split].append(e)
                covered += 1
    print(f"coverage: {covered} of {len(dense)} aggregated dense rows ({100 * covered / len(dense):.1f} %)")
    for why, n in sorted(skipped.items()):
        print(f"  not represented: {n:4d} {why}")
    print()
    head = f"{'split':9s} {'gpu':9s} {'engine':7s} {'model':14s} {'rows':>4s} | TTFT med    p90  signed | TPOT med    p90  signed"
    print(head)
    print("-" * len(head))
    for (split, gpu, engine, model), es in sorted(groups.items(), key=lambda kv: (kv[0][0] != "train", kv[0][1:])):
        print(f"{split:9s} {gpu:9s} {engine:7s} {model:14s} {len(es):4d} | {fmt([e[0] for e in es])} | {fmt([e[1] for e in es])}")
    print()
    print("summary (median |error|):")
    lines = []
    for split in ("train", "held-out"):
        for engine in (*ENGINES, "all"):
            es = split_errs.get((split, engine), [])
            if es:
                ttft, tpot = stats([e[0] for e in es])[0], stats([e[1] for e in es])[0]
                lines.append((split, engine, len(es), ttft, tpot))
    for split in ("train", "held-out"):
        es = long_errs.get(split, [])
        if es:
            lines.append((split, "ISL>=8000", len(es), stats([e[0] for e in es])[0], stats([e[1] for e in es])[0]))
    if args.markdown:
        print("| split | engine | rows | TTFT median \\|error\\| | TPOT median \\|error\\| |")
        print("|---|---|---:|---:|---:|")
        for split, engine, n, ttft, tpot in lines:
            print(f"| {split} | {engine} | {n} | {100 * ttft:.1f} % | {100 * tpot:.1f} % |")
        print(
            f"| reference: aiconfigurator 0.12 on its own sample | | | {100 * AIC_REFERENCE['ttft']:.1f} % | "
            f"{100 * AIC_REFERENCE['tpot']:.1f} % |"
        )
    else:
        for split, engine, n, ttft, tpot in lines:
            print(f"  {split:9s} {engine:10s} {n:4d} rows  TTFT {100 * ttft:5.1f} %  TPOT {100 * tpot:5.1f} %")
        ref = AIC_REFERENCE
        print(f"  reference: aiconfigurator 0.12 on its own sample  TTFT {100 * ref['ttft']:.1f} %", end="")
        print(f"  TPOT {100 * ref['tpot']:.1f} %")
    moe_section(base, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
