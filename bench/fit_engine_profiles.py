"""Build the vLLM, SGLang and TRT-LLM engine profiles (catalogs/efficiency/<engine>.yaml) from public
measurements, end to end, and print what the fit saw.

    pip download aiconfigurator-core==0.12.0 --no-deps -d /tmp/aic && unzip -q /tmp/aic/*.whl -d /tmp/aic/x
    python bench/fit_engine_profiles.py --tables /tmp/aic/x/aiconfigurator_core/systems/data [--engine vllm] [--dry-run]
    python bench/fit_engine_profiles.py --overheads-only [--engine vllm]   # after a change to the serving model
    python bench/fit_engine_profiles.py --uncertainty-only [--engine vllm] # the spread alone, every factor kept

1. Kernel factors per (GPU, precision) from the engine's per-op latency tables in aiconfigurator-core
   0.12.0 (Apache-2.0): ``planner calibrate fit --op-tables`` (:func:`planner.api.fit_op_tables`).
2. The engine's overheads (prefill_fixed_s, decode_fixed_s, decode_per_seq_s, prefill_sync_frac), one
   set for the engine, on the TRAINING split of the serving measurements
   (catalogs/measurements/aiconfigurator/silicon_sample_dense.csv: the rows of Llama-3.1-8B and
   Qwen3-32B; :func:`planner.api.calibrate_serving`). Held-out rows are printed, never fitted on.
   The spread of the fitted profile on those training rows (robust one-sigma of ln predicted/measured of the
   mean TTFT and TPOT, and their correlation) is written as the file's ``uncertainty`` block, the held-out
   rows' spread beside it as a check (``planner study robust`` draws from the training figures).
3. GPUs the tables lack borrow the nearest GPU's set (``transferred_from``, with a note).

The package is needed only here, never at run time: the result is committed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from planner import api
from planner.calibrate.engine_fit import _X0, SERVE_PARAMS
from planner.io.efficiency import validate_efficiency_doc
from planner.io.optables import write_kernel_overlay

ROOT = Path(__file__).resolve().parent.parent
SILICON = ROOT / "catalogs/measurements/aiconfigurator/silicon_sample_dense.csv"
TRANSFERS: dict[str, tuple[Any, ...]] = {  # catalog GPU without tables -> the GPU whose set it borrows, and why
    "h100-pcie": (
        "h100-sxm",
        "aiconfigurator-core 0.12.0 has no H100 PCIe tables; same GH100 chip as the SXM part (its lower clocks and "
        "bandwidth are in gpus.yaml), whose factors are used.",
    ),
    "a100-pcie-80gb": (
        "a100-sxm-80gb",
        "aiconfigurator-core 0.12.0 has no A100 PCIe tables; same GA100 chip as the SXM part, whose factors are used.",
    ),
    "l4": (
        "l40s",
        "aiconfigurator-core 0.12.0 has no L4 tables (its l4.yaml is an estimate-only spec); the L40S is the nearest "
        "measured GPU (Ada generation, PCIe, no NVLink), whose factors are used. Treat L4 estimates as uncalibrated.",
    ),
    "a100-sxm-40gb": (
        "a100-sxm-80gb",
        "aiconfigurator-core 0.12.0 has no A100 40 GB tables; same GA100 chip and engine as the 80 GB part, whose "
        "factors are used.",
    ),
    "h20": (
        "h100-sxm",
        "transferred from h100-sxm, not measured: aiconfigurator-core 0.12.0 has no H20 tables. Same GH100 chip with "
        "HBM3, as the H100 SXM (the H200's is HBM3e); its cut compute and 4.0 TB/s are in gpus.yaml. Treat H20 "
        "estimates as uncalibrated.",
    ),
    "mi300x": (
        "h200-sxm",
        "transferred from h200-sxm, not measured: no public per-op tables of vLLM/SGLang on ROCm were read. The H200 "
        "is the measured GPU nearest in the figures decode depends on (4.8 vs 5.3 TB/s, 141 vs 192 GB); AMD's kernels "
        "(hipBLASLt, aiter, RCCL) reach other shares of peak. Treat MI300X estimates as uncalibrated.",
        ("vllm", "sglang"),
    ),
    "mi325x": (
        "h200-sxm",
        "transferred from h200-sxm, not measured: no public per-op tables of vLLM/SGLang on ROCm were read. The H200 "
        "is the measured GPU nearest in memory (HBM3e; 4.8 vs 6 TB/s); the MI325X has the MI300X's CDNA 3 compute. "
        "Treat MI325X estimates as uncalibrated.",
        ("vllm", "sglang"),
    ),
    "mi355x": (
        "b200",
        "transferred from b200, not measured: no public per-op tables of vLLM/SGLang on ROCm were read. The B200 is "
        "the measured GPU of the same generation (FP4 tensor cores, 8 TB/s HBM3e, 1-1.4 kW). Treat MI355X estimates "
        "as uncalibrated.",
        ("vllm", "sglang"),
    ),
    "h800": (
        "h100-sxm",
        "No op table in aiconfigurator-core 0.12.0 of H800; same GH100 silicon and HBM as the H100 SXM "
        "(aiconfigurator's h800_sxm.yaml reuses the H100's compute op tables for the same reason), so the H100 SXM's "
        "kernel factors and overheads are lent (transferred, an assumption). The H100's measured all-reduce curves are "
        "not (its NVLink is 450 GB/s per direction, the H800's 200); the H800's all-reduces take the ring formula on its "
        "own NVLink with the H100's fitted bandwidth share and latency. Treat H800 estimates as uncalibrated.",
        ("vllm", "sglang", "trtllm"),
        {"without_allreduce_curve": True},
    ),
}
"""Entries with a third element apply only to those engines (TensorRT-LLM does not run on AMD GPUs: engines.yaml
unsupported_gpus); a fourth holds extra keys of the entry (the H800 borrows no all-reduce curve)."""
HEADER = """\
# Efficiency factors of the performance core for the `{engine}` engine, one entry per GPU, built by
# bench/fit_engine_profiles.py from public measurements (fitted_on names them):
# - kernel factors (compute, attention, memory, all-reduce) from the engine's per-op latency tables in
#   aiconfigurator-core 0.12.0 (Apache-2.0), per GPU and precision;
# - overheads (prefill_fixed_s, decode_fixed_s, decode_per_seq_s, prefill_sync_frac), one set for the
#   engine, fitted on the training split of aiconfigurator-core's silicon_sample.csv (Llama-3.1-8B and
#   Qwen3-32B rows; Llama-3.1-70B rows held out), catalogs/measurements/aiconfigurator/.
# An entry with transferred_from borrows another GPU's factors, and its note says why.
"""


class _Dumper(yaml.SafeDumper):
    """Block style, except the [bytes, seconds] points of an all-reduce curve: one per line."""


def _point(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = len(data) == 2 and all(isinstance(v, float) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _point)


def pct(values: list[float]) -> str:
    if not values:
        return "     -"
    return f"{100 * statistics.median(abs(v) for v in values):5.1f}%"


OVERHEADS_SOURCE = "aiconfigurator-core-0-12-0"  # the silicon sample's source id (sources.yaml) and date
OVERHEADS_AS_OF = "2026-09"
OVERHEADS_NOTE = " The overheads are the engine's (one set for every GPU), fitted end to end."


def shipped_kernels(engine: str) -> dict[str, Any]:
    """The kernel factors of the committed profile, its overheads taken off (``--overheads-only``)."""
    doc = yaml.safe_load((ROOT / "catalogs/efficiency" / f"{engine}.yaml").read_text())["efficiency"]
    out: dict[str, Any] = {}
    for gpu, entry in doc.items():
        if "transferred_from" in entry:
            continue
        sets = [entry] + [entry[b] for b in ("fp8", "fp4") if b in entry]
        for e in sets:
            for key in SERVE_PARAMS:
                e.pop(key, None)
            e["fitted_on"] = e["fitted_on"].removeprefix("kernels: ").split("; overheads: ")[0]
            if "note" in e:
                e["note"] = e["note"].replace(OVERHEADS_NOTE, "")
        out[gpu] = entry
    return out


def build(engine: str, tables: Path | None, dry_run: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kernels_path = Path(tmp) / "kernels.yaml"
        if tables is None:
            kernels: dict[str, Any] = shipped_kernels(engine)
        else:
            result = api.fit_op_tables(tables, engine)
            write_kernel_overlay(kernels_path, engine, result.overlay_entries())
            kernels = yaml.safe_load(kernels_path.read_text())["efficiency"]
        for entry in kernels.values():  # the yaml reader reads as_of 2026-09 as text; keep it so
            entry["as_of"] = str(entry["as_of"])
            for block in ("fp8", "fp4"):
                if block in entry:
                    entry[block]["as_of"] = str(entry[block]["as_of"])
        start = dict(zip(SERVE_PARAMS, _X0, strict=True))  # starting point only: every overhead is fitted below

        def with_overheads(entry: dict[str, Any], overheads: dict[str, float], extra: str = "") -> dict[str, Any]:
            out = {**entry, **{k: float(f"{v:.6g}") for k, v in overheads.items()}}
            if extra:
                out["fitted_on"] = f"kernels: {entry['fitted_on']}; overheads: {extra}"
                out["note"] = f"{entry.get('note', '')}{OVERHEADS_NOTE}".strip()
            for block in ("fp8", "fp4"):
                if block in entry:
                    out[block] = with_overheads(entry[block], overheads, extra)
                    out[block].pop("note", None)
            return out

        def document(overheads: dict[str, float], extra: str, uncertainty: dict[str, Any] | None = None) -> dict[str, Any]:
            entries = {gpu: with_overheads(e, overheads, extra) for gpu, e in kernels.items()}
            for gpu, (donor, why, *rest) in TRANSFERS.items():
                if rest and engine not in rest[0]:
                    continue
                if gpu not in entries and donor in entries:
                    flags = rest[1] if len(rest) > 1 else {}
                    entries[gpu] = {"transferred_from": donor, **flags, "note": why}
            doc = {"schema_version": 1, "engine": engine, "efficiency": dict(sorted(entries.items()))}
            if uncertainty is not None:
                doc["uncertainty"] = uncertainty
            return doc

        seed_dir = Path(tmp) / "seed"
        seed_dir.mkdir()
        (seed_dir / "efficiency.yaml").write_text(yaml.safe_dump(document(start, ""), sort_keys=False))
        cal = api.calibrate_serving([SILICON], engine=engine, catalog_dirs=[seed_dir])
    # The spread of the fitted profile on the TRAINING rows (what `planner study robust` draws from); the held-out
    # rows' spread is written beside it as a check and never used to set it.
    uncertainty = cal.uncertainty_doc(OVERHEADS_SOURCE, OVERHEADS_AS_OF)
    doc = document(cal.overheads, cal.fitted_on, uncertainty)
    validate_efficiency_doc(doc)
    print(f"{engine}: overheads " + ", ".join(f"{k} {v:.4g}" for k, v in cal.overheads.items()))
    if uncertainty is not None:
        ho = uncertainty.get("held_out", {})
        print(
            f"  spread (ln predicted/measured, robust one-sigma): training TTFT {uncertainty['ttft_log_sigma']:.3f} "
            f"TPOT {uncertainty['tpot_log_sigma']:.3f} corr {uncertainty['correlation']:+.2f}; held out TTFT "
            f"{ho.get('ttft_log_sigma', float('nan')):.3f} TPOT {ho.get('tpot_log_sigma', float('nan')):.3f}"
        )
    for name, errs in (("training", cal.train), ("held out", cal.held_out)):
        print(
            f"  {name:9s} {len(errs):4d} rows  TTFT median |err| {pct([e.ttft_rel_error for e in errs])}"
            f"  TPOT median |err| {pct([e.tpot_rel_error for e in errs])}"
        )
    reasons: dict[str, int] = {}
    for _row, why in cal.skipped:
        reasons[why] = reasons.get(why, 0) + 1
    for why, n in sorted(reasons.items()):
        print(f"  skipped {n:4d}: {why}")
    if dry_run:
        return
    out = ROOT / "catalogs/efficiency" / f"{engine}.yaml"
    if out.exists():  # the MoE serving block is bench/fit_moe_serving.py's: kept as it is (refit it after this)
        moe = yaml.safe_load(out.read_text()).get("moe_serving")
        if moe is not None:
            doc["moe_serving"] = moe
    out.write_text(HEADER.format(engine=engine) + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=110))
    print(f"  wrote {out.relative_to(ROOT)}")


def write_uncertainty(engine: str, dry_run: bool) -> None:
    """Measure the committed profile's spread on the training rows (and, as a check, the held-out rows) without
    refitting anything, and write it as the file's ``uncertainty`` block, every other byte kept."""
    cal = api.calibrate_serving([SILICON], engine=engine, refit=False)
    uncertainty = cal.uncertainty_doc(OVERHEADS_SOURCE, OVERHEADS_AS_OF)
    assert uncertainty is not None
    ho = uncertainty.get("held_out", {})
    print(
        f"{engine}: spread of the committed profile (ln predicted/measured, robust one-sigma): training "
        f"{uncertainty['rows']} rows TTFT {uncertainty['ttft_log_sigma']:.3f} TPOT {uncertainty['tpot_log_sigma']:.3f} "
        f"corr {uncertainty['correlation']:+.2f}; held out {ho.get('rows', 0)} rows TTFT "
        f"{ho.get('ttft_log_sigma', float('nan')):.3f} TPOT {ho.get('tpot_log_sigma', float('nan')):.3f}"
    )
    path = ROOT / "catalogs/efficiency" / f"{engine}.yaml"
    text = path.read_text().split("\nuncertainty:\n")[0].rstrip("\n") + "\n"
    block = yaml.dump({"uncertainty": uncertainty}, Dumper=_Dumper, sort_keys=False, width=110)
    validate_efficiency_doc({**yaml.safe_load(text), **yaml.safe_load(block)})
    if not dry_run:
        path.write_text(text + block)
        print(f"  wrote the uncertainty block of {path.relative_to(ROOT)}")


def main() -> int:
    os.chdir(ROOT)  # the catalogs name the measurements by their path in the repository
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--tables", type=Path, help="aiconfigurator_core/systems/data of aiconfigurator-core 0.12.0")
    src.add_argument("--overheads-only", action="store_true", help="keep the committed kernel factors, refit only the overheads")
    src.add_argument(
        "--uncertainty-only", action="store_true", help="keep every committed factor, measure and write only its spread"
    )
    ap.add_argument("--engine", action="append", choices=("vllm", "sglang", "trtllm"))
    ap.add_argument("--dry-run", action="store_true", help="print the fit, write nothing")
    args = ap.parse_args()
    for engine in args.engine or ("vllm", "sglang", "trtllm"):
        if args.uncertainty_only:
            write_uncertainty(engine, args.dry_run)
        else:
            build(engine, args.tables, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
