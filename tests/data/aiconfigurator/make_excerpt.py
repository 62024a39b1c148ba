"""Regenerate this excerpt from an unpacked aiconfigurator-core 0.12.0 wheel (not run by the tests).

    python tests/data/aiconfigurator/make_excerpt.py /path/to/aiconfigurator_core/systems/data

Keeps every column of the h100_sxm vLLM 0.24.0 tables and a fixed-seed sample of their rows: mostly
the rows the op fit uses (layer-shaped GEMMs, long prompts, bandwidth-bound decode attention, the
CUDA-graph all-reduce at 16 KiB to 64 MiB), plus some of the others.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
TABLES = {
    "gemm/vllm/0.24.0/gemm_perf.parquet": 420,
    "attention/vllm/0.24.0/context_attention_perf.parquet": 300,
    "attention/vllm/0.24.0/generation_attention_perf.parquet": 300,
    "comm/vllm/0.24.0/custom_allreduce_perf.parquet": 0,  # all 138 rows
}


def _used(name: str, t: dict[str, np.ndarray]) -> np.ndarray:
    lat = t["latency"] * 1e-3
    if name.startswith("gemm"):
        m, n, k = (t[c].astype(float) for c in ("m", "n", "k"))
        layer = (n >= 1024) & (k >= 1024) & np.isin(t["gemm_dtype"], ["bfloat16", "fp8"])
        keep = (t["kernel_source"] == "torch.nn.functional.linear") | (t["kernel_source"] == "CutlassFP8ScaledMMLinearKernel")
        return layer & keep & ((m >= 1024) | ((m <= 16) & (n * k >= 16 * 2**20))) & (lat > 0)
    full = (t["window_size"] == 0) & (t["head_dim"] == 128) & (t["kernel_source"] == "vllm_flash_attn_fa3")
    if "context" in name:
        return full & (t["isl"] >= 4096)
    kv = 2.0 * t["batch_size"] * (t["isl"] + t["step"]) * t["num_key_value_heads"] * t["head_dim"]
    return full & (kv >= 32 * 2**20)


def main(data: Path) -> None:
    rng = np.random.default_rng(20261201)
    for rel, size in TABLES.items():
        table = pq.read_table(data / "h100_sxm" / rel)
        if size:
            cols = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}
            used = np.flatnonzero(_used(rel, cols))
            other = np.flatnonzero(~_used(rel, cols))
            pick = np.concatenate([rng.choice(used, int(size * 0.85), replace=False),
                                   rng.choice(other, size - int(size * 0.85), replace=False)])  # fmt: skip
            table = table.take(pa.array(np.sort(pick)))
        out = HERE / "h100_sxm" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.replace_schema_metadata(None), out, compression="zstd")
        print(out.relative_to(HERE), table.num_rows, "rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
