"""`planner calibrate run` (GPU microbenchmarks) and the H100 overlay fitted from its measurements."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from planner import api
from planner.io.measurements import read_measurements

ROOT = Path(__file__).resolve().parent.parent
H100_DIR = ROOT / "catalogs" / "measurements" / "h100-torch"
HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_shipped_h100_measurements_parse_with_provenance() -> None:
    text = (H100_DIR / "measurements.csv").read_text()
    assert text.startswith("# measured by planner calibrate run on 2026-11-27: NVIDIA H100 80GB HBM3, driver 580.159.04")
    rows = read_measurements(H100_DIR / "measurements.csv")
    assert len(rows) == 36
    assert {r.model for r in rows} == {"llama-3.1-8b", "llama-3.1-70b"}
    assert all(r.gpu == "h100-sxm" and r.tp == 1 for r in rows)


def test_refit_reproduces_the_shipped_overlay() -> None:
    """One code path: the overlay is `planner calibrate fit` of the shipped file."""
    result = api.calibrate([H100_DIR / "measurements.csv"], [], source="planner-h100-torch-2026-11", as_of="2026-11-27")
    shipped = yaml.safe_load((H100_DIR / "efficiency.yaml").read_text())["efficiency"]["h100-sxm"]
    eff = result.fits["h100-sxm"].efficiency
    for name in (
        "compute_frac",
        "attention_compute_frac",
        "memory_frac",
        "prefill_fixed_s",
        "decode_fixed_s",
        "decode_per_seq_s",
    ):
        assert getattr(eff, name) == pytest.approx(shipped[name], rel=1e-3), name
    # Single-GPU rows cannot see an all-reduce: those factors are the built-in (Splitwise-fitted) ones.
    builtin = api.load_catalog().efficiency["h100-sxm"]
    assert eff.allreduce_latency_s == builtin.allreduce_latency_s
    errors = result.fits["h100-sxm"].abs_errors()
    assert float(errors.max()) < 0.10  # 7.9 % when written
    assert float(max(result.held_out["h100-sxm"])) < 0.20  # 12.9 % when written


def test_overlay_changes_estimate(run_cli) -> None:  # type: ignore[no-untyped-def]
    args = (
        "estimate",
        "decode",
        "--model",
        "llama-3.1-70b",
        "--gpu",
        "h100-sxm",
        "--tp",
        "4",
        "--batch",
        "64",
        "--context",
        "2048",
        "--format",
        "json",
    )
    code, out, err = run_cli(*args)
    assert code == 0, err
    base = json.loads(out)["data"]
    code, out, err = run_cli(*args, "--catalog-dir", str(H100_DIR))
    assert code == 0, err
    tuned = json.loads(out)["data"]
    assert "measurements.csv" in tuned["efficiency"]["fitted_on"]
    # Kernel time under CUDA graphs has none of the serving engine's ~17 ms of per-step overhead.
    assert tuned["latency_ms"] < base["latency_ms"] - 10
    assert tuned["breakdown_ms"]["overhead"] < 1.0


def test_calibrate_run_refuses_without_torch_or_gpu(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run_cli("calibrate", "run", "--gpu", "h100-sxm", "-o", str(tmp_path / "m.csv"))
    if not HAS_TORCH:
        assert code == 2
        assert err.startswith("error: calibrate run needs PyTorch")
    else:
        import torch

        if not torch.cuda.is_available():
            assert code == 2
            assert "needs an NVIDIA GPU" in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.csv").exists() or code == 0


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (pip install 'planner[gpu]'); the GPU path ran on an H100")
def test_calibrate_run_cpu_code_path(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A tiny model on the CPU: the same code, eager instead of CUDA graphs."""
    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "models.yaml").write_text(
        "schema_version: 1\nmodels:\n  tiny:\n    name: tiny\n    source: hf-llama-3-1-8b-config\n    num_params: 1000000\n"
        "    num_active_params: 1000000\n    num_layers: 2\n    hidden_size: 64\n    intermediate_size: 128\n"
        "    num_attention_heads: 4\n    num_kv_heads: 2\n    head_dim: 16\n    vocab_size: 256\n    max_context_tokens: 4096\n"
    )
    out_csv = tmp_path / "m.csv"
    code, _, err = run_cli(
        "calibrate",
        "run",
        "--gpu",
        "h100-sxm",
        "--model",
        "tiny",
        "--device",
        "cpu",
        "--quick",
        "-o",
        str(out_csv),
        "--catalog-dir",
        str(cat),
    )
    assert code == 0, err
    rows = read_measurements(out_csv)
    assert len(rows) == 4 and all(r.latency_s > 0 for r in rows)


def test_shipped_kernel_timings_are_physical() -> None:
    """The H100 GEMM/attention timings never beat the datasheet: bf16 989 and fp8 1979 TFLOP/s,
    3,350 GB/s of HBM (`planner calibrate`'s compute_frac/memory_frac summarize them)."""
    import csv

    lines = (H100_DIR / "components.csv").read_text().splitlines()
    assert lines[0].startswith("# measured by planner microbench on 2026-11-27: NVIDIA H100 80GB HBM3")
    rows = list(csv.DictReader(lines[1:]))
    assert {r["kind"] for r in rows} == {"gemm", "attention-prefill", "attention-decode"}
    peak = {"bf16": 989.4, "fp8": 1978.9}
    for r in rows:
        assert float(r["tflop_per_s"]) < peak[r["dtype"]], r
        assert float(r["gbyte_per_s"]) < 3350, r
    big_bf16 = [
        float(r["tflop_per_s"]) for r in rows if r["kind"] == "gemm" and r["dtype"] == "bf16" and r["shape"].startswith("1024x")
    ]
    assert 0.6 < max(big_bf16) / peak["bf16"] < 0.9  # 80 % when measured
