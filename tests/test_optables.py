"""Kernel factors from aiconfigurator-core's per-op latency tables: the fitter recovers known factors
from tables generated with the core's own formulas, the committed h100_sxm vLLM excerpt re-derives
the shipped factors, malformed tables are one clean error, and ``calibrate fit --op-tables`` end to end."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from planner import api
from planner.calibrate import opfit
from planner.domain import Catalog, Efficiency
from planner.errors import InputError
from planner.io import optables
from planner.io.catalog import load_catalog
from planner.io.schemas import EfficiencyEntry
from planner.perf.roofline import Hardware, allreduce_s
from planner.perf.transfer import intra_node_bandwidth_bytes_per_s

EXCERPT = Path(__file__).resolve().parent / "data" / "aiconfigurator"
Run = Callable[..., tuple[int, str, str]]

# The h100-sxm vLLM bf16 factors fitted on the full aiconfigurator-core 0.12.0 tables
# (h100_sxm gemm/attention/comm vllm 0.24.0), i.e. the ones shipped in the vllm overlay.
SHIPPED_H100_VLLM_BF16 = {
    "compute_frac": 0.826498,
    "attention_compute_frac": 0.57653,
    "memory_frac": 0.876402,
    "allreduce_bandwidth_frac": 0.603267,
    "allreduce_latency_s": 2.51549e-06,
    "gemm_half_dim": 61.0103,
    "gemm_dim_exp": 1.0,
    "overlap_q": 3.39248,
}
# The excerpt holds ~300 of the ~10,000 rows each kernel factor was fitted on; its fit lands within
# this relative distance (the GEMM's shape and overlap terms, weakly set by flat bf16 tables, are
# compared by the times they give rather than one by one). The all-reduce excerpt is the whole
# table, so those factors agree exactly.
EXCERPT_REL_TOL = 0.03

TRUE = {"compute_frac": 0.73, "memory_frac": 0.81, "attention_compute_frac": 0.47, "kv_read_frac": 0.66,
        "allreduce_bandwidth_frac": 0.58, "allreduce_latency_s": 7.5e-6, "gemm_half_dim": 1300.0,
        "gemm_dim_exp": 1.4, "gemm_kernel_s": 5e-6, "overlap_q": 2.0}  # fmt: skip


_EFF = Efficiency(gpu="h100-sxm", compute_frac=0.5, attention_compute_frac=0.5, memory_frac=0.5,
                  prefill_fixed_s=0.0, decode_fixed_s=0.0, decode_per_seq_s=0.0,
                  allreduce_latency_s=TRUE["allreduce_latency_s"],
                  allreduce_bandwidth_frac=TRUE["allreduce_bandwidth_frac"], fitted_on="synthetic")  # fmt: skip


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(require_efficiency=False)


# --------------------------------------------------------------------------- synthetic tables


def _write(path: Path, columns: dict[str, list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def _synthetic_tables(root: Path, cat: Catalog) -> None:
    """h100_sxm vllm tables whose latencies are the core's formulas at the factors TRUE, plus rows
    that beat the roofline (which the fit must exclude) and rows the fit must ignore."""
    gpu = cat.gpus["h100-sxm"]
    peak, bw = gpu.bf16_flop_per_s, gpu.hbm_bandwidth_bytes_per_s
    eff = _EFF
    base = {"framework": "VLLM", "version": "0.24.0", "device": "NVIDIA H100 80GB HBM3"}

    gemm: dict[str, list[object]] = {c: [] for c in ("framework", "version", "device", "op_name", "kernel_source",
                                                     "gemm_dtype", "m", "n", "k", "latency")}  # fmt: skip
    for m, n, k in itertools.product([1, 4, 16, 64, 256, 1024, 4096, 16384], [1024, 2048, 4096, 14336], [1024, 4096, 8192]):
        t = opfit.gemm_model_s(np.array([m]), np.array([n]), np.array([k]), compute_frac=TRUE["compute_frac"],
                               memory_frac=TRUE["memory_frac"], peak_flop_per_s=peak, hbm_bytes_per_s=bw,
                               weight_bytes=2.0, act_bytes=2.0, half_dim=TRUE["gemm_half_dim"],
                               dim_exp=TRUE["gemm_dim_exp"], kernel_s=TRUE["gemm_kernel_s"],
                               overlap_q=TRUE["overlap_q"])[0]  # fmt: skip
        for key, value in {**base, "op_name": "gemm", "kernel_source": "torch.nn.functional.linear",
                           "gemm_dtype": "bfloat16", "m": m, "n": n, "k": k, "latency": t * 1e3}.items():  # fmt: skip
            gemm[key].append(value)
    # one compute-bound row at 120 % of peak: impossible, excluded and counted
    for key, value in {**base, "op_name": "gemm", "kernel_source": "torch.nn.functional.linear", "gemm_dtype": "bfloat16",
                       "m": 8192, "n": 8192, "k": 8192, "latency": 2 * 8192**3 / (1.2 * peak) * 1e3}.items():  # fmt: skip
        gemm[key].append(value)
    _write(root / "h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet", gemm)

    attn_cols = ("framework", "version", "device", "op_name", "kernel_source", "batch_size", "isl", "num_heads",
                 "num_key_value_heads", "head_dim", "beam_width", "attn_dtype", "kv_cache_dtype", "step",
                 "window_size", "latency")  # fmt: skip
    ctx: dict[str, list[object]] = {c: [] for c in attn_cols}
    gen: dict[str, list[object]] = {c: [] for c in attn_cols}
    for b, isl, h in itertools.product([1, 4, 16], [1024, 4096, 8192, 16384], [8, 32, 64]):
        flops = opfit.context_attention_flops(np.array([b]), np.array([isl]), np.array([h]), np.array([128]))[0]
        t = flops / (TRUE["attention_compute_frac"] * peak)
        row = {**base, "op_name": "context_attention", "kernel_source": "fa3", "batch_size": b, "isl": isl, "num_heads": h,
               "num_key_value_heads": 8, "head_dim": 128, "beam_width": 1, "attn_dtype": "bfloat16",
               "kv_cache_dtype": "bfloat16", "step": 0, "window_size": 0, "latency": t * 1e3}  # fmt: skip
        for key, value in row.items():
            ctx[key].append(value)
    for b, step, kvh in itertools.product([1, 16, 64, 256], [1023, 4095, 16383], [1, 8]):
        moved = opfit.kv_read_bytes(np.array([b]), np.array([1 + step]), np.array([kvh]), np.array([128]), 2.0)[0]
        t = moved / (TRUE["kv_read_frac"] * bw)
        row = {**base, "op_name": "generation_attention", "kernel_source": "fa3", "batch_size": b, "isl": 1,
               "num_heads": 32, "num_key_value_heads": kvh, "head_dim": 128, "beam_width": 1, "attn_dtype": "bfloat16",
               "kv_cache_dtype": "bfloat16", "step": step, "window_size": 0, "latency": t * 1e3}  # fmt: skip
        for key, value in row.items():
            gen[key].append(value)
    # a sliding-window row (not the core's attention) and a head_dim 64 row: ignored
    for key, value in {**{k: v[0] for k, v in gen.items()}, "window_size": 128, "latency": 1e-6}.items():
        gen[key].append(value)
    for key, value in {**{k: v[0] for k, v in ctx.items()}, "head_dim": 64, "latency": 1e-6}.items():
        ctx[key].append(value)
    _write(root / "h100_sxm/attention/vllm/0.24.0/context_attention_perf.parquet", ctx)
    _write(root / "h100_sxm/attention/vllm/0.24.0/generation_attention_perf.parquet", gen)

    ar_cols = ("framework", "version", "device", "op_name", "kernel_source", "allreduce_dtype", "num_gpus",
               "message_size", "latency", "backend")  # fmt: skip
    ar: dict[str, list[object]] = {c: [] for c in ar_cols}
    for tp, elements in itertools.product([2, 4, 8], [2**e for e in range(7, 28)]):
        hw = Hardware(gpu, eff, intra_node_bandwidth_bytes_per_s(gpu, cat, tp))
        t = allreduce_s(elements * 2.0, tp, hw)  # message_size counts bf16 elements
        for backend, scale in (("vllm_graph", 1.0), ("vllm_eager", 3.0)):  # the eager path must not be fitted
            row = {**base, "op_name": "all_reduce", "kernel_source": f"custom_{backend}", "allreduce_dtype": "bfloat16",
                   "num_gpus": tp, "message_size": elements, "latency": scale * t * 1e3, "backend": backend}  # fmt: skip
            for key, value in row.items():
                ar[key].append(value)
    _write(root / "h100_sxm/comm/vllm/0.24.0/custom_allreduce_perf.parquet", ar)
    # an older version with nonsense: the newest version is the one read
    _write(root / "h100_sxm/gemm/vllm/0.5.6.post2/gemm_perf.parquet", {c: v[:1] for c, v in gemm.items()})
    (root / "h100_sxm/gemm/vllm/0.99.0").mkdir()  # a version directory without the table (a reuse marker only)


def test_fit_recovers_factors_of_the_core_formulas(tmp_path: Path, cat: Catalog) -> None:
    _synthetic_tables(tmp_path, cat)
    result = api.fit_op_tables(tmp_path, "vllm")
    fit = result.fits["h100-sxm"]
    for name in (*opfit.GEMM_FACTORS, "attention_compute_frac", "allreduce_bandwidth_frac", "allreduce_latency_s"):
        assert fit.factors[name] == pytest.approx(TRUE[name], rel=1e-3), name
    assert fit.ops["gemm"].fit.detail["kernel_fixed_s"] == pytest.approx(TRUE["gemm_kernel_s"], rel=1e-3)
    curve = fit.ops["allreduce"].fit.curve  # the measured curve, as the table has it (graph backend)
    assert sorted(curve) == [2, 4, 8] and len(curve[8]) == 21
    gpu = cat.gpus["h100-sxm"]
    hw = Hardware(gpu, replace(_EFF, gpu="h100-sxm"), intra_node_bandwidth_bytes_per_s(gpu, cat, 8))
    assert curve[8][5][1] == pytest.approx(allreduce_s(curve[8][5][0], 8, hw), rel=1e-9)
    assert fit.kv_read_frac == pytest.approx(TRUE["kv_read_frac"], rel=1e-3)
    for op, use in fit.ops.items():
        assert use.fit.median_abs_error_frac < 1e-3, op
        assert use.version == "0.24.0", op
    assert fit.ops["gemm"].fit.excluded == 1  # the row at 120 % of peak
    assert fit.ops["allreduce"].selection.startswith("vllm_graph")
    assert fit.ops["allreduce"].fit.rows == 3 * 13  # 16 KiB .. 64 MiB of bf16: 2^13 .. 2^25 elements
    assert "h100-sxm/fp8" in result.skipped  # no fp8 rows in these tables
    assert "h100-sxm/fp8" not in result.fits


def test_allreduce_fit_is_the_core_formula(cat: Catalog) -> None:
    gpu = cat.gpus["b200"]
    tp = np.repeat([2.0, 4.0, 8.0], 9)
    size = np.tile(2.0 ** np.arange(14, 27, 1.5), 3)
    link = np.array([intra_node_bandwidth_bytes_per_s(gpu, cat, int(t)) for t in tp])
    lat = opfit.allreduce_model_s(tp, size, link, bandwidth_frac=0.42, latency_s=3e-6)
    fit = opfit.fit_allreduce(tp, size, lat, link)
    assert fit.factors["allreduce_bandwidth_frac"] == pytest.approx(0.42, rel=1e-6)
    assert fit.factors["allreduce_latency_s"] == pytest.approx(3e-6, rel=1e-6)


def test_version_order() -> None:
    versions = ["0.5.6.post2", "0.5.14", "0.5.9", "1.3.0rc20", "1.3.0rc10", "1.2.0rc5", "1.3.0", "0.1.dev19262"]
    assert sorted(versions, key=optables.version_key) == [
        "0.1.dev19262", "0.5.6.post2", "0.5.9", "0.5.14", "1.2.0rc5", "1.3.0rc10", "1.3.0rc20", "1.3.0",
    ]  # fmt: skip


# --------------------------------------------------------------------------- the committed excerpt


def test_excerpt_rederives_shipped_factors() -> None:
    result = api.fit_op_tables(EXCERPT, "vllm")
    fit = result.fits["h100-sxm"]
    for name in ("compute_frac", "memory_frac", "attention_compute_frac"):
        assert fit.factors[name] == pytest.approx(SHIPPED_H100_VLLM_BF16[name], rel=EXCERPT_REL_TOL), name
    gpu = load_catalog().gpus["h100-sxm"]
    shapes = list(itertools.product([1, 16, 128, 1024, 8192], [1024, 4096, 28672], [1024, 8192]))
    m, n, k = (np.array(v, dtype=float) for v in zip(*shapes, strict=True))

    def gemm_s(f: dict[str, float]) -> np.ndarray:
        return opfit.gemm_model_s(m, n, k, compute_frac=f["compute_frac"], memory_frac=f["memory_frac"],
                                  half_dim=f["gemm_half_dim"], dim_exp=f["gemm_dim_exp"], overlap_q=f["overlap_q"],
                                  peak_flop_per_s=gpu.bf16_flop_per_s, hbm_bytes_per_s=gpu.hbm_bandwidth_bytes_per_s,
                                  weight_bytes=2.0, act_bytes=2.0)  # fmt: skip

    ratio = gemm_s(fit.factors) / gemm_s(SHIPPED_H100_VLLM_BF16)
    assert float(np.max(np.abs(ratio - 1))) < EXCERPT_REL_TOL
    for name in ("allreduce_bandwidth_frac", "allreduce_latency_s"):
        assert fit.factors[name] == pytest.approx(SHIPPED_H100_VLLM_BF16[name], rel=1e-4), name
    assert {use.version for use in fit.ops.values()} == {"0.24.0"}
    assert fit.ops["gemm"].selection == "bfloat16, torch.nn.functional.linear"
    assert fit.ops["allreduce"].table == "h100_sxm/comm/vllm/0.24.0/custom_allreduce_perf.parquet"
    assert "h100-sxm/fp8" in result.fits


def test_excerpt_is_small_and_licensed() -> None:
    files = sorted(EXCERPT.rglob("*.parquet"))
    assert len(files) == 4
    for path in files:
        assert pq.read_metadata(path).num_rows <= 500
    assert "Apache License" in (EXCERPT / "LICENSE").read_text()
    readme = (EXCERPT / "README.md").read_text()
    assert "aiconfigurator-core" in readme and "0.12.0" in readme


# --------------------------------------------------------------------------- malformed tables


@pytest.fixture
def excerpt_copy(tmp_path: Path) -> Path:
    root = tmp_path / "tables"
    shutil.copytree(EXCERPT, root)
    return root


def test_corrupt_parquet_is_one_error(excerpt_copy: Path, run_cli: Run) -> None:
    bad = excerpt_copy / "h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(InputError) as info:
        api.fit_op_tables(excerpt_copy, "vllm")
    assert str(bad) in info.value.message
    code, out, err = run_cli("calibrate", "fit", "--op-tables", str(excerpt_copy), "--engine", "vllm")
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.count("error:") == 1
    assert str(bad) in err.replace("\n", "")


def test_missing_column_is_one_error(excerpt_copy: Path, run_cli: Run) -> None:
    path = excerpt_copy / "h100_sxm/attention/vllm/0.24.0/generation_attention_perf.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["step"]), path)
    with pytest.raises(InputError) as info:
        api.fit_op_tables(excerpt_copy, "vllm")
    assert f"{path}: column 'step' missing" in info.value.message
    code, _, err = run_cli("calibrate", "fit", "--op-tables", str(excerpt_copy), "--engine", "vllm")
    assert code == 2
    assert "Traceback" not in err and err.count("error:") == 1


def test_bad_value_names_file_and_row(excerpt_copy: Path) -> None:
    path = excerpt_copy / "h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet"
    table = pq.read_table(path)
    lat = table.column("latency").to_numpy().copy()
    lat[7] = -1.0
    pq.write_table(table.set_column(table.column_names.index("latency"), "latency", pa.array(lat)), path)
    with pytest.raises(InputError, match=r"column 'latency', row 7: -1.0 is not a positive"):
        api.fit_op_tables(excerpt_copy, "vllm")


def test_not_a_tables_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no aiconfigurator op tables"):
        api.fit_op_tables(tmp_path, "vllm")


# --------------------------------------------------------------------------- the command line


def test_cli_end_to_end(tmp_path: Path, run_cli: Run) -> None:
    target = tmp_path / "vllm.yaml"
    args = ("calibrate", "fit", "--op-tables", str(EXCERPT), "--engine", "vllm")
    code, out, err = run_cli(*args, "--format", "json", "--write", str(target))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "ok"
    assert doc["inputs"]["engine"] == "vllm"
    fits = doc["data"]["fits"]
    assert set(fits) == {"h100-sxm", "h100-sxm/fp8"}
    assert fits["h100-sxm"]["ops"]["gemm"]["version"] == "0.24.0"
    assert fits["h100-sxm"]["ops"]["gemm"]["rows"] > 100

    written = yaml.safe_load(target.read_text())
    assert written["engine"] == "vllm"
    entry = written["efficiency"]["h100-sxm"]
    kernel = set(optables.KERNEL_FACTORS)
    assert kernel <= set(entry)
    assert not {"prefill_fixed_s", "decode_fixed_s", "decode_per_seq_s"} & set(entry)
    assert entry["source"] == "aiconfigurator-core-0-12-0"
    assert str(entry["as_of"]) == "2026-09"
    assert "h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet" in entry["fitted_on"]
    assert kernel <= set(entry["fp8"])
    assert entry["compute_frac"] == pytest.approx(fits["h100-sxm"]["factors"]["compute_frac"], rel=1e-5)
    placeholders = {"prefill_fixed_s": 0.0, "decode_fixed_s": 0.0, "decode_per_seq_s": 0.0}
    EfficiencyEntry.model_validate({**entry, **placeholders, "fp8": {**entry["fp8"], **placeholders}})

    code, table, err = run_cli(*args)
    assert code == 0, err
    assert "h100-sxm" in table and "kernel factors" in table
    assert run_cli(*args, "--format", "json")[1] == run_cli(*args, "--format", "json")[1]  # deterministic


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ((), "--op-tables needs --engine"),
        (("--engine", "splitwise"), "the op tables are of vllm, sglang or trtllm"),
        (("--engine", "vllm", "--precision", "bf16"), "drop --precision"),
        (("--engine", "vllm", "--fp8-gemm", "int8"), "--fp8-gemm int8"),
        (("--engine", "vllm", "--gpu", "nope-9000"), "--gpu"),
    ],
)
def test_cli_op_tables_flag_errors(run_cli: Run, extra: tuple[str, ...], needle: str) -> None:
    code, out, err = run_cli("calibrate", "fit", "--op-tables", str(EXCERPT), *extra)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert needle in err.replace("\n", ""), err


def test_fp8_block_choice() -> None:
    result = api.fit_op_tables(EXCERPT, "vllm", fp8_gemm="fp8_block")
    assert "h100-sxm/fp8" in result.skipped  # the excerpt holds no fp8_block rows
    assert "fp8_block" in result.skipped["h100-sxm/fp8"]
    assert math.isfinite(result.fits["h100-sxm"].factors["compute_frac"])


def test_gemm_model_is_the_cores_formula() -> None:
    """opfit's vectorized GEMM time is the core's overlap_s / gemm_dim_share on every shape the fit
    uses (n, k >= 1024), so the fitted factors mean in the core what they meant in the fit."""
    from planner.perf.roofline import gemm_dim_share, overlap_s

    f = {"compute_frac": 0.7, "memory_frac": 0.8, "half_dim": 1400.0, "dim_exp": 1.3, "overlap_q": 1.6}
    peak, bw = 1.979e15, 4.8e12
    for m, n, k in itertools.product([1, 64, 4096], [1024, 7168], [1024, 8192]):
        got = opfit.gemm_model_s(np.array([m]), np.array([n]), np.array([k]), **f, peak_flop_per_s=peak,
                                 hbm_bytes_per_s=bw, weight_bytes=1.0, act_bytes=1.0)[0]  # fmt: skip
        c = 2.0 * m * n * k / (f["compute_frac"] * gemm_dim_share(min(n, k), f["half_dim"], f["dim_exp"]) * peak)
        mem = float(opfit.gemm_bytes(np.array([m]), np.array([n]), np.array([k]), 1.0, 1.0)[0]) / (f["memory_frac"] * bw)
        assert got == pytest.approx(overlap_s(c, mem, f["overlap_q"]), rel=1e-12)
