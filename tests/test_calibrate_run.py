"""`planner calibrate run` (GPU microbenchmarks) and the H100 overlay fitted from its measurements."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import Run, assert_input_error

from planner import api
from planner.calibrate.stepfit import PARAMS, predict_s
from planner.domain import Catalog, Measurement
from planner.io.measurements import read_measurements
from planner.perf.roofline import Hardware

# These tests check the core's mechanics on figures worked out under the 2023 Splitwise engine
# profile; they pin it (the default engine's figures are in test_engine_profiles.py and the README).
ENGINE = "splitwise"


@pytest.fixture(scope="session")
def catalog(splitwise_catalog: Catalog) -> Catalog:
    return splitwise_catalog


ROOT = Path(__file__).resolve().parent.parent
H100_DIR = ROOT / "catalogs" / "measurements" / "h100-torch"
HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_shipped_h100_measurements_parse_with_provenance() -> None:
    text = (H100_DIR / "measurements.csv").read_text()
    assert text.startswith("# measured by planner calibrate run on 2026-11-27: 4x NVIDIA H100 80GB HBM3 SXM")
    assert "driver 580.159.04, torch 2.11.0+cu130, CUDA 13.0, NCCL 2.28.9" in text.splitlines()[0]
    rows = read_measurements(H100_DIR / "measurements.csv")
    assert len(rows) == 216
    assert {r.model for r in rows} == {"llama-3.1-8b", "llama-3.1-70b"}
    assert {(r.tp, r.precision) for r in rows} == {(tp, p) for tp in (1, 2, 4) for p in ("bf16", "fp8")}
    assert all(r.gpu == "h100-sxm" for r in rows)


@pytest.mark.slow
def test_refit_reproduces_the_shipped_overlay() -> None:
    """One code path: the overlay is `planner calibrate fit` of the shipped file, one set for the
    bf16 runs and one (nested under fp8) for the fp8 runs; TP 2 and 4 runs fit the all-reduce."""
    result = api.calibrate([H100_DIR / "measurements.csv"], [], source="planner-h100-torch-2026-11", as_of="2026-11-27")
    assert list(result.fits) == ["h100-sxm", "h100-sxm/fp8"]
    shipped = yaml.safe_load((H100_DIR / "efficiency.yaml").read_text())["efficiency"]["h100-sxm"]
    builtin = api.load_catalog().efficiency["h100-sxm"]
    for key, entry in (("h100-sxm", shipped), ("h100-sxm/fp8", shipped["fp8"])):
        eff = result.fits[key].efficiency
        for name in PARAMS:
            assert getattr(eff, name) == pytest.approx(entry[name], rel=1e-3), (key, name)
        # measured on NVLink4 under CUDA graphs: far from the Splitwise engine's all-reduce figures
        assert eff.allreduce_latency_s < builtin.allreduce_latency_s / 2
        assert eff.allreduce_bandwidth_frac > 2 * builtin.allreduce_bandwidth_frac
    for key, worst, held in (("h100-sxm", 0.15, 0.15), ("h100-sxm/fp8", 0.20, 0.22)):  # 12.3/12.4 %, 17.0/19.1 % written
        assert float(result.fits[key].abs_errors().max()) < worst, key
        assert float(max(result.held_out[key])) < held, key
        assert float(np.median(result.fits[key].abs_errors())) < 0.05, key  # 3.0 %, 3.6 %


def test_bf16_factors_misjudge_fp8_steps() -> None:
    """Why fp8 has its own set: the bf16-fitted factors predict the measured fp8 steps too fast."""
    rows = read_measurements(H100_DIR / "measurements.csv")
    cat = api.load_catalog()
    bf16_only = replace(cat.efficiency["h100-sxm"], fp8=None)
    tuned = api.load_catalog([H100_DIR]).efficiency["h100-sxm"]
    g = cat.gpus["h100-sxm"]
    errs: dict[str, list[float]] = {"bf16 set": [], "fp8 set": []}
    for m in rows:
        if m.precision != "fp8":
            continue
        intra = api.hardware(cat, g, m.tp).intra_node_bytes_per_s
        tuned_bf16 = replace(tuned, fp8=None)
        errs["bf16 set"].append(predict_s(m, cat.models[m.model], Hardware(g, tuned_bf16, intra)) / m.latency_s - 1)
        errs["fp8 set"].append(predict_s(m, cat.models[m.model], Hardware(g, tuned, intra)) / m.latency_s - 1)
    assert bf16_only.fp8 is None and tuned.fp8 is not None
    assert float(np.median(errs["bf16 set"])) < -0.10  # -18 % when written: optimistic
    assert abs(float(np.median(errs["fp8 set"]))) < 0.03


def test_tp1_rerun_on_another_host_repeats() -> None:
    """The TP-1 bf16 steps, measured on two lent hosts the same day, agree (run-to-run spread)."""
    first = {_shape(m): m.latency_s for m in read_measurements(H100_DIR / "repeat-tp1-bf16-run1.csv")}
    second = {
        _shape(m): m.latency_s for m in read_measurements(H100_DIR / "measurements.csv") if (m.tp, m.precision) == (1, "bf16")
    }
    assert set(first) == set(second) and len(first) == 36
    diffs = sorted(abs(second[k] / first[k] - 1) for k in first)
    assert diffs[len(diffs) // 2] < 0.01 and diffs[-1] < 0.05  # 0.4 % median, 3.5 % worst when written


def _shape(m: Measurement) -> tuple[str, str, int, int, float]:
    return (m.phase, m.model, m.batch, m.tokens, m.context_tokens)


def test_overlay_changes_estimate(run_cli: Run) -> None:
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


def test_calibrate_run_refuses_without_torch_or_gpu(run_cli: Run, tmp_path: Path) -> None:
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
def test_calibrate_run_cpu_code_path(run_cli: Run, tmp_path: Path) -> None:
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
    # tensor parallel: two processes (gloo on the cpu device) time their shards, collectives included
    code, _, err = run_cli(
        "calibrate", "run", "--gpu", "h100-sxm", "--model", "tiny", "--device", "cpu", "--quick", "--tp", "2",
        "-o", str(out_csv), "--catalog-dir", str(cat),
    )  # fmt: skip
    assert code == 0, err
    rows = read_measurements(out_csv)
    assert len(rows) == 4 and {r.tp for r in rows} == {2} and all(r.latency_s > 0 for r in rows)
    code, out, err = run_cli(
        "calibrate", "run", "--gpu", "h100-sxm", "--model", "tiny", "--device", "cpu", "--precision", "fp8",
        "-o", str(tmp_path / "no.csv"), "--catalog-dir", str(cat),
    )  # fmt: skip
    assert code == 2 and out == "" and "fp8 tensor cores" in err and not (tmp_path / "no.csv").exists()


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


def _subset(tmp_path: Path, precision: str) -> Path:
    lines = (H100_DIR / "measurements.csv").read_text().splitlines()
    keep = [ln for ln in lines if ln.startswith(("#", "phase")) or f",{precision}," in ln]
    out = tmp_path / f"{precision}.csv"
    out.write_text("\n".join(keep) + "\n")
    return out


def test_fp8_only_overlay_needs_the_bf16_factors(run_cli: Run, tmp_path: Path) -> None:
    fp8 = _subset(tmp_path, "fp8")
    target = tmp_path / "cat" / "efficiency.yaml"
    target.parent.mkdir()
    args = ("calibrate", "fit", str(fp8), "--source", "planner-h100-torch-2026-11", "--folds", "0", "--write", str(target))
    lines = assert_input_error(run_cli(*args))
    assert lines[0].startswith("error: --write: h100-sxm has fp8 factors but no bf16 ones")
    assert not target.exists()
    code, _, err = run_cli(*args, "--merge-into", str(ROOT / "catalogs" / "efficiency" / "splitwise.yaml"))
    assert code == 0, err
    eff = api.load_catalog([target.parent]).efficiency["h100-sxm"]
    assert eff.fitted_on.startswith("perf_model.csv")  # the GPU's own factors kept from the merged file
    assert eff.fp8 is not None and eff.fp8.fitted_on.startswith("fp8.csv: llama-3.1-70b, llama-3.1-8b on h100-sxm, TP 1/2/4, fp8")
    assert eff.for_precision("fp8") is eff.fp8 and eff.for_precision("bf16") is eff


def test_bf16_refit_keeps_the_fp8_set(run_cli: Run, tmp_path: Path) -> None:
    bf16 = _subset(tmp_path, "bf16")
    target = tmp_path / "cat" / "efficiency.yaml"
    target.parent.mkdir()
    code, _, err = run_cli(
        "calibrate", "fit", str(bf16), "--source", "planner-h100-torch-2026-11", "--folds", "0",
        "--write", str(target), "--merge-into", str(H100_DIR / "efficiency.yaml"),
    )  # fmt: skip
    assert code == 0, err
    written = yaml.safe_load(target.read_text())["efficiency"]["h100-sxm"]
    shipped = yaml.safe_load((H100_DIR / "efficiency.yaml").read_text())["efficiency"]["h100-sxm"]
    assert written["fp8"] == shipped["fp8"]
    assert written["fitted_on"].startswith("bf16.csv")


def test_fp8_estimate_uses_the_fp8_set(run_cli: Run) -> None:
    def latency(precision: str, *extra: str) -> float:
        code, out, err = run_cli(
            "estimate", "prefill", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4", "--tokens", "4096",
            "--precision", precision, "--format", "json", *extra,
        )  # fmt: skip
        assert code == 0, err
        return float(json.loads(out)["data"]["latency_ms"])

    tuned = ("--catalog-dir", str(H100_DIR))
    # measured: 213.7 ms (fp8) and 293.3 ms (bf16) at TP 4 for one 4,096-token prompt
    assert latency("fp8", *tuned) == pytest.approx(213.7, rel=0.05)
    assert latency("bf16", *tuned) == pytest.approx(293.3, rel=0.05)


def test_catalog_rejects_a_nested_fp8_transfer(tmp_path: Path) -> None:
    from planner.errors import CatalogError

    doc = yaml.safe_load((H100_DIR / "efficiency.yaml").read_text())
    doc["efficiency"]["h100-sxm"]["fp8"]["transferred_from"] = "a100-sxm-80gb"
    (tmp_path / "efficiency.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError, match=r"efficiency\.h100-sxm\.fp8: .*transferred entry"):
        api.load_catalog([tmp_path])


def test_fp8_without_fp8_factors_is_flagged(run_cli: Run) -> None:
    args = ("estimate", "decode", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "4", "--batch", "64",
            "--context", "2048", "--precision", "fp8", "--format", "json")  # fmt: skip
    code, out, err = run_cli(*args)
    assert code == 0, err
    data = json.loads(out)
    assert data["data"]["efficiency"]["precision_set"] == "bf16"
    assert any("no fp8 steps of h100-sxm were measured" in w for w in data["warnings"])
    code, out, err = run_cli(*args, "--catalog-dir", str(H100_DIR))
    assert code == 0, err
    data = json.loads(out)
    assert data["data"]["efficiency"]["precision_set"] == "fp8"
    assert data["data"]["efficiency"]["compute_frac"] == pytest.approx(0.539293)
    assert not any("fp8" in w for w in data["warnings"])
    assert data["data"]["latency_ms"] == pytest.approx(16.19, rel=0.08)  # the stack measured 16.19 ms


def test_fit_per_engine(run_cli: Run) -> None:
    """`--engine` fits only that engine's rows: the shipped H100 file (engine torch-cudagraph)
    mixed with the Splitwise table (a serving engine) gives each its own factors."""
    splitwise = ROOT / "catalogs" / "measurements" / "splitwise" / "perf_model.csv"
    both = (str(H100_DIR / "measurements.csv"), "--splitwise", str(splitwise), "--folds", "0", "--format", "json")
    factors = {}
    for engine in ("torch-cudagraph", "splitwise"):
        code, out, err = run_cli("calibrate", "fit", *both, "--engine", engine)
        assert code == 0, err
        doc = json.loads(out)
        assert doc["inputs"]["engine"] == engine
        points = [p for g in doc["data"]["gpus"].values() for p in g["points"]]
        assert points and all(("perf_model" in p["origin"]) == (engine == "splitwise") for p in points)
        factors[engine] = doc["data"]["gpus"]["h100-sxm"]["factors"]["decode_fixed_s"]
    ours = api.calibrate([H100_DIR / "measurements.csv"], [], folds=0).fits["h100-sxm"].efficiency.decode_fixed_s
    assert factors["torch-cudagraph"] == pytest.approx(ours)
    assert factors["splitwise"] != pytest.approx(ours, rel=0.5)
    code, out, err = run_cli("calibrate", "fit", *both, "--engine", "vllm")
    assert json.loads(out)["status"] == "error"  # --format json: the error envelope on stdout (README: JSON output)
    lines = assert_input_error((code, "", err))
    assert lines[0].startswith("error: --engine vllm: no measurement of that engine; the files have splitwise, torch-cudagraph")


H200_DIR = ROOT / "catalogs" / "measurements" / "h200-torch"


@pytest.mark.slow
def test_refit_reproduces_the_h200_overlay() -> None:
    """The H200 overlay is `calibrate fit` of its file (TP 1 and 2: the all-reduce is fitted too)."""
    rows = read_measurements(H200_DIR / "measurements.csv")
    assert rows[0].origin.endswith("measurements.csv:6") and len(rows) == 144
    assert {(r.tp, r.precision) for r in rows} == {(tp, p) for tp in (1, 2) for p in ("bf16", "fp8")}
    result = api.calibrate([H200_DIR / "measurements.csv"], [], source="planner-h200-torch-2026-11", as_of="2026-11-27")
    shipped = yaml.safe_load((H200_DIR / "efficiency.yaml").read_text())["efficiency"]["h200-sxm"]
    for key, entry in (("h200-sxm", shipped), ("h200-sxm/fp8", shipped["fp8"])):
        eff = result.fits[key].efficiency
        for name in PARAMS:
            assert getattr(eff, name) == pytest.approx(entry[name], rel=1e-3), (key, name)
        assert float(np.median(result.fits[key].abs_errors())) < 0.06, key  # 3.7 %, 3.1 % when written


def test_h100_factors_transfer_to_the_h200() -> None:
    """The catalog lends the H100's factors to the H200 (same GH100 compute die, faster HBM3e).
    Measured: the H100 kernel-level factors, with the H200's own datasheet bandwidth, predict the
    H200 steps within a few percent on median (3.8 % bf16, 4.0 % fp8 when written)."""
    cat = api.load_catalog([H100_DIR])
    eff = cat.efficiency["h200-sxm"]
    assert eff.transferred_from == "h100-sxm" and eff.fp8 is not None
    g = cat.gpus["h200-sxm"]
    for precision in ("bf16", "fp8"):
        errs = [
            abs(
                predict_s(m, cat.models[m.model], Hardware(g, eff, api.hardware(cat, g, m.tp).intra_node_bytes_per_s))
                / m.latency_s
                - 1
            )
            for m in read_measurements(H200_DIR / "measurements.csv")
            if m.precision == precision
        ]
        assert len(errs) == 72
        assert float(np.median(errs)) < 0.05, precision
        assert max(errs) < 0.30, precision  # 26 % when written (a batch-1 decode step)


def test_workload_calibration_entry_applies_the_overlay(run_cli: Run, tmp_path: Path) -> None:
    """`calibration:` in a workload is the same as --catalog-dir with that overlay, for size and
    check; it is relative to the file the workload is written in."""
    examples = ROOT / "examples"
    text = (examples / "workloads" / "chatbot.yaml").read_text()
    (tmp_path / "overlay").mkdir()
    (tmp_path / "overlay" / "efficiency.yaml").write_bytes((H100_DIR / "efficiency.yaml").read_bytes())
    calibrated = tmp_path / "chatbot.yaml"
    calibrated.write_text(text + "\ncalibration: overlay\n")
    plain = tmp_path / "plain.yaml"
    plain.write_text(text)

    def size(*args: str) -> dict:  # type: ignore[type-arg]
        code, out, err = run_cli("size", *args, "--format", "json")
        assert code == 0, err
        return json.loads(out)["data"]  # type: ignore[no-any-return]

    via_entry = size(str(calibrated))
    via_flag = size(str(plain), "--catalog-dir", str(tmp_path / "overlay"))
    builtin = size(str(plain))
    assert via_entry == via_flag
    assert via_entry != builtin

    proposal = tmp_path / "proposal.yaml"
    shipped = (examples / "proposals" / "chatbot.yaml").read_text()
    proposal.write_text(shipped.replace("../workloads/chatbot.yaml", "chatbot.yaml"))

    def check(path: Path, *args: str) -> dict:  # type: ignore[type-arg]
        code, out, err = run_cli("check", str(path), "--format", "json", "--no-fail", *args)
        assert code == 0, err
        return json.loads(out)["data"]["evaluated"]  # type: ignore[no-any-return]

    plain_proposal = tmp_path / "plain_proposal.yaml"
    plain_proposal.write_text(proposal.read_text().replace("chatbot.yaml", "plain.yaml"))
    assert check(proposal) == check(plain_proposal, "--catalog-dir", str(tmp_path / "overlay"))
    assert check(proposal) != check(plain_proposal)

    calibrated.write_text(text + "\ncalibration: nowhere\n")
    lines = assert_input_error(run_cli("size", str(calibrated)))
    assert lines[0].startswith(f"error: {calibrated}: calibration: nowhere: no such directory or file")
