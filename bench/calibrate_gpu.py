"""Measure model-shaped decoder stacks on the local NVIDIA GPU for `planner calibrate fit`.

    python bench/calibrate_gpu.py --gpu h100-sxm -o measurements.csv [--quick] [--tp 1 2 4] [--precision bf16 fp8]
    python bench/calibrate_gpu.py --gpu h200-sxm -o power.csv --power --precision bf16 fp8   # + board power (NVML)

Needs only PyTorch, NumPy-free and planner's own stdlib modules, so it runs on a bare GPU machine
with the repository checked out (the full CLI, `planner calibrate run`, does the same where
planner's dependencies are installed). Llama-3.1-8B is timed whole (32 layers); the 70B shape as a
stack of 8 layers scaled to 80.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.calibrate import microbench, powersample  # noqa: E402
from planner.domain import ModelSpec  # noqa: E402

GRID = microbench.DEFAULT_GRID


def model_spec(model_id: str) -> ModelSpec:
    """The catalog entry, read with PyYAML if present, else with a minimal reader of this file's flat layout."""
    text = (ROOT / "catalogs" / "models.yaml").read_text()
    try:
        import yaml

        entry = yaml.safe_load(text)["models"][model_id]
    except ImportError:
        entry, inside = {}, False
        for line in text.splitlines():
            if line.startswith(f"  {model_id}:"):
                inside = True
                continue
            if inside and line.startswith("  ") and not line.startswith("    "):
                break
            if inside and line.startswith("    ") and ":" in line and not line.strip().startswith("#"):
                key, _, value = line.strip().partition(":")
                entry[key] = value.split("#")[0].strip().strip('"')
    ints = (
        "num_layers",
        "hidden_size",
        "intermediate_size",
        "num_attention_heads",
        "num_kv_heads",
        "head_dim",
        "vocab_size",
        "max_context_tokens",
    )
    return ModelSpec(
        id=model_id,
        name=str(entry["name"]),
        num_params=float(entry["num_params"]),
        num_active_params=float(entry["num_active_params"]),
        **{k: int(entry[k]) for k in ints},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu", required=True, help="catalog GPU id to record (e.g. h100-sxm)")
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("--quick", action="store_true", help="a few points per model (code-path check)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--components", type=Path, help="also time GEMMs (bf16, fp8) and attention; write them here")
    parser.add_argument("--tp", type=int, nargs="+", default=[1], help="tensor-parallel degrees to time (one process per GPU)")
    parser.add_argument("--precision", nargs="+", default=["bf16"], choices=["bf16", "fp8"])
    parser.add_argument("--model", nargs="+", default=list(GRID), choices=list(GRID))
    parser.add_argument("--power", action="store_true", help="sample board power (NVML) during each step, and idle")
    parser.add_argument("--power-seconds", type=float, default=powersample.DEFAULT_SECONDS, help="sustained replay per step")
    parser.add_argument("--power-hz", type=float, default=powersample.DEFAULT_HZ)
    args = parser.parse_args()
    info = microbench.device_info(args.device)
    rows, layers = [], {}
    probe, power = None, None
    if args.power:
        nv = powersample.nvml_reader(0)
        probe = microbench.power_probe(nv.read_w, hz=args.power_hz, seconds=args.power_seconds)
        before = powersample.idle(powersample.PowerSampler(nv.read_w, hz=args.power_hz))
        print(f"idle: {before.mean_w:.1f} W mean, {before.peak_w:.1f} W peak ({before.samples} samples)", flush=True)
        power = {
            "idle_w": before.mean_w, "idle_peak_w": before.peak_w, "nvml": nv.nvml_version, "nvml_driver": nv.driver,
            "field": nv.field, "power_limit_w": nv.power_limit_w, "hz": args.power_hz, "sustain_s": args.power_seconds,
            "settle_s": powersample.DEFAULT_SETTLE_S,
        }  # fmt: skip
    for precision in args.precision:
        for tp in args.tp:
            for model_id in args.model:
                grid = GRID[model_id]
                spec = model_spec(model_id)
                n = min(grid["layers"], 2) if args.quick else grid["layers"]
                layers[model_id] = n
                pre = grid["prefill"][:2] if args.quick else grid["prefill"]
                dec = grid["decode"][:2] if args.quick else grid["decode"]
                try:
                    rows += microbench.measure(
                        spec,
                        layers=n,
                        prefill=pre,
                        decode=dec,
                        device=args.device,
                        tp=tp,
                        precision=precision,
                        progress=lambda s, m=model_id: print(f"{m}: {s}", flush=True),
                        power=probe,
                    )
                except Exception as exc:  # one configuration failing must not lose the others' rows
                    print(f"{model_id} TP {tp} {precision}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                    continue
                # write as it goes: a run cut short keeps what it measured
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(microbench.csv_text(rows, args.gpu, info, layers, power))
    if args.power and power is not None:
        import time

        time.sleep(2.0)  # let the last step's clocks drop
        after = powersample.idle(powersample.PowerSampler(nv.read_w, hz=args.power_hz))
        print(f"idle after: {after.mean_w:.1f} W mean, {after.peak_w:.1f} W peak", flush=True)
        power["idle_after_w"] = after.mean_w
    if args.components is not None:
        parts = microbench.components(args.device)
        args.components.parent.mkdir(parents=True, exist_ok=True)
        args.components.write_text(microbench.components_csv(parts, info))
        print(f"wrote {len(parts)} kernel timings to {args.components}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(microbench.csv_text(rows, args.gpu, info, layers, power))
    print(f"wrote {len(rows)} rows to {args.output}")


if __name__ == "__main__":
    main()
