"""The library's door of ``planner calibrate``: :func:`planner.api.calibrate.run_fit` (every mode of
``calibrate fit``) gives what the command prints, reads each input once and carries its text, and
:func:`planner.api.calibrate.run_microbench` refuses a machine without a CUDA GPU as ``calibrate run`` does."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, SPLITWISE_CSV, cli

from planner.api.calibrate import (
    OP_TABLES_SOURCE,
    CalibrateFitOptions,
    CalibrateFitRun,
    CalibrateRunOptions,
    run_fit,
    run_microbench,
)
from planner.errors import InputError
from planner.io import sources
from planner.report.calibration import fit_data
from planner.report.envelope import envelope, to_json
from planner.report.serve import serving_fit_data

# library = CLI double runs of every command: the full lane (.ci/run) runs them, the fast lane leaves them out
pytestmark = pytest.mark.slow

H100_CSV = REPO / "catalogs" / "measurements" / "h100-torch" / "measurements.csv"
H100_OVERLAY = REPO / "catalogs" / "measurements" / "h100-torch" / "efficiency.yaml"
SILICON = REPO / "catalogs" / "measurements" / "aiconfigurator" / "silicon_sample_dense.csv"
OP_TABLES = REPO / "tests" / "data" / "aiconfigurator"
SGLANG = REPO / "tests" / "data" / "engine_bench" / "sglang_bench_one_batch.jsonl"


def _cli_json(*args: str) -> dict[str, Any]:
    code, out, err = cli("calibrate", "fit", *args, "--format", "json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _doc(result: CalibrateFitRun) -> dict[str, Any]:
    """The envelope the command prints for a measurement fit, built from the library's result."""
    assert result.calibration is not None
    data = fit_data(result.calibration.fits, result.calibration.held_out)
    doc: dict[str, Any] = json.loads(to_json(envelope("calibrate fit", "ok", result.inputs, data, list(result.warnings))))
    return doc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- measurement files


def test_fit_on_measurements_is_the_commands_json() -> None:
    result = run_fit(CalibrateFitOptions(measurement_files=(H100_CSV,), folds=0))
    assert result.mode == "measurements" and result.op_tables is None and result.serving is None
    assert result.calibration is not None and list(result.calibration.fits) == ["h100-sxm", "h100-sxm/fp8"]
    assert result.inputs == {"measurements": [str(H100_CSV)], "splitwise": []}
    assert result.written is None
    assert _doc(result) == _cli_json(str(H100_CSV), "--folds", "0")


def test_fit_reads_each_file_once_and_carries_its_text() -> None:
    def reads(options: CalibrateFitOptions) -> tuple[int, CalibrateFitRun]:
        before = sources.reads
        result = run_fit(options)
        return sources.reads - before, result

    one, _ = reads(CalibrateFitOptions(measurement_files=(H100_CSV,), folds=0))
    two, result = reads(CalibrateFitOptions(measurement_files=(H100_CSV,), splitwise_files=(SPLITWISE_CSV,), folds=0))
    assert two - one == 1  # one more file, one more read: carrying its text did not read it again
    assert [s.path for s in result.sources] == [str(H100_CSV), str(SPLITWISE_CSV)]
    assert [s.sha256 for s in result.sources] == [_sha256(H100_CSV), _sha256(SPLITWISE_CSV)]
    assert result.sources[0].text == H100_CSV.read_text()


def test_fit_per_engine_and_held_out_error_as_the_command() -> None:
    options = CalibrateFitOptions(measurement_files=(H100_CSV,), splitwise_files=(SPLITWISE_CSV,), engine="splitwise")
    result = run_fit(options)
    assert result.inputs["engine"] == "splitwise"
    assert result.calibration is not None and result.calibration.held_out  # 5 folds by default
    doc = _cli_json(str(H100_CSV), "--splitwise", str(SPLITWISE_CSV), "--engine", "splitwise")
    assert _doc(result) == doc


def test_fit_on_sglang_files_as_the_command() -> None:
    """The committed SGLang excerpt (five bf16 steps on an H100) fitted with the H100 measurements."""
    run = ("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "1", "--precision", "bf16")
    options = CalibrateFitOptions(
        measurement_files=(H100_CSV,), sglang_files=(SGLANG,), model="llama-3.1-8b", gpu="h100-sxm", tp=1,
        precision="bf16", folds=0,
    )  # fmt: skip
    result = run_fit(options)
    assert result.inputs == {"measurements": [str(H100_CSV)], "splitwise": [], "sglang": [str(SGLANG)]}
    assert [s.path for s in result.sources] == [str(H100_CSV), str(SGLANG)]
    assert result.calibration is not None
    origins = {p.measurement.origin.split(":")[0] for p in result.calibration.fits["h100-sxm"].points}
    assert str(SGLANG) in origins
    assert _doc(result) == _cli_json(str(H100_CSV), "--sglang", str(SGLANG), *run, "--folds", "0")


def test_write_and_merge_into(tmp_path: Path) -> None:
    lines = H100_CSV.read_text().splitlines()
    bf16 = tmp_path / "bf16.csv"
    bf16.write_text("\n".join(ln for ln in lines if ln.startswith(("#", "phase")) or ",bf16," in ln) + "\n")
    target = tmp_path / "efficiency.yaml"
    options = CalibrateFitOptions(
        measurement_files=(bf16,), folds=0, source="planner-h100-torch-2026-11", write=target, merge_into=H100_OVERLAY
    )
    result = run_fit(options)
    assert result.written == target
    assert [s.path for s in result.sources] == [str(bf16), str(H100_OVERLAY)]
    written = yaml.safe_load(target.read_text())["efficiency"]["h100-sxm"]
    assert written["fitted_on"].startswith("bf16.csv")
    assert written["fp8"] == yaml.safe_load(H100_OVERLAY.read_text())["efficiency"]["h100-sxm"]["fp8"]  # kept
    by_cli = tmp_path / "by-cli.yaml"
    code, _, err = cli(
        "calibrate", "fit", str(bf16), "--folds", "0", "--source", "planner-h100-torch-2026-11",
        "--write", str(by_cli), "--merge-into", str(H100_OVERLAY),
    )  # fmt: skip
    assert code == 0, err
    assert err == f"wrote {by_cli}\n"
    assert by_cli.read_text() == target.read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (CalibrateFitOptions(), "calibrate fit: give a measurement CSV, --splitwise FILE, --sglang FILE or --vllm FILE"),
        (CalibrateFitOptions(measurement_files=(H100_CSV,), folds=1), "--folds must be 0 (skip) or at least 2"),
        (CalibrateFitOptions(serving_files=(SILICON,)), "--serving needs --engine (the engine whose overheads are fitted)"),
        (
            CalibrateFitOptions(serving_files=(SILICON,), engine="vllm", measurement_files=(H100_CSV,)),
            "--serving: fits serving measurements alone; drop the other inputs",
        ),
        (
            CalibrateFitOptions(op_tables=OP_TABLES, engine="vllm", precision="bf16", merge_into=H100_OVERLAY),
            "--op-tables: fits the op tables alone; drop --precision, --merge-into",
        ),
        (
            CalibrateFitOptions(op_tables=OP_TABLES),
            "--op-tables needs --engine (vllm, sglang or trtllm): the tables hold one set per engine",
        ),
        (CalibrateFitOptions(splitwise_files=(SPLITWISE_CSV,), tp=2), "--tp: these describe --sglang/--vllm benchmark files"),
    ],
)
def test_fit_errors_name_the_flags(options: CalibrateFitOptions, message: str) -> None:
    with pytest.raises(InputError) as info:
        run_fit(options)
    assert info.value.message.startswith(message)


def test_options_are_frozen() -> None:
    options = CalibrateFitOptions(measurement_files=(H100_CSV,))
    with pytest.raises(FrozenInstanceError):
        options.folds = 0  # type: ignore[misc]


# --------------------------------------------------------------------------- op tables


def test_fit_on_op_tables_is_the_commands_json(tmp_path: Path) -> None:
    target = tmp_path / "vllm.yaml"
    result = run_fit(CalibrateFitOptions(op_tables=OP_TABLES, engine="vllm", write=target))
    assert result.mode == "op_tables" and result.op_tables is not None
    assert result.inputs == {"op_tables": str(OP_TABLES), "engine": "vllm", "fp8_gemm": "fp8"}
    assert result.op_tables.source == OP_TABLES_SOURCE and result.sources == ()  # Parquet, not text
    assert result.written == target and yaml.safe_load(target.read_text())["engine"] == "vllm"
    doc = _cli_json("--op-tables", str(OP_TABLES), "--engine", "vllm")
    assert doc["inputs"] == result.inputs
    assert set(doc["data"]["fits"]) == set(result.op_tables.fits) == {"h100-sxm", "h100-sxm/fp8"}
    for key, fit in result.op_tables.fits.items():
        assert doc["data"]["fits"][key]["factors"] == dict(fit.factors)
    assert (doc["data"]["source"], doc["data"]["as_of"]) == (result.op_tables.source, result.op_tables.as_of)
    assert doc["data"]["skipped"] == result.op_tables.skipped


# --------------------------------------------------------------------------- serving measurements


def _size(line: str) -> tuple[int, int]:
    m = re.search(r"_(\d+)x(\d+)_c(\d+)_", line.split(",")[0])
    assert m is not None, line
    return int(m[1]) + int(m[2]), int(m[3])


@pytest.fixture(scope="module")
def serving_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few short vLLM H200 rows of the committed sample: Llama-3.1-8B (the training split), two
    Llama-3.1-70B rows (held out) and a disaggregated row (skipped); a full fit takes minutes."""
    lines = SILICON.read_text().splitlines()
    rows = lines[1:]
    train = sorted((ln for ln in rows if re.search(r"8b_instruct_fp8_h200_sxm_vllm_agg_", ln.split(",")[0])), key=_size)
    held = sorted((ln for ln in rows if re.search(r"llama_3_1_70b_h200_sxm_vllm_fp8_agg_", ln.split(",")[0])), key=_size)
    disagg = [ln for ln in rows if "_vllm_disagg_" in ln.split(",")[0]]
    assert len(train) >= 4 and len(held) >= 2 and disagg
    path = tmp_path_factory.mktemp("serving") / "silicon.csv"
    path.write_text("\n".join([lines[0], *train[:4], *held[:2], *disagg]) + "\n")
    return path


@pytest.mark.slow
def test_fit_on_serving_measurements_is_the_commands_json(serving_subset: Path) -> None:
    result = run_fit(CalibrateFitOptions(serving_files=(serving_subset,), engine="vllm"))
    assert result.mode == "serving" and result.serving is not None
    assert result.inputs == {"serving": [str(serving_subset)], "engine": "vllm", "fit_models": ["llama-3.1-8b", "qwen3-32b"]}
    assert [s.sha256 for s in result.sources] == [_sha256(serving_subset)]
    assert (len(result.serving.train), len(result.serving.held_out), len(result.serving.skipped)) == (4, 2, 1)
    mine = json.loads(to_json(envelope("calibrate fit", "ok", result.inputs, serving_fit_data(result.serving), [])))
    assert mine == _cli_json("--serving", str(serving_subset), "--engine", "vllm")


def test_serving_training_models_are_catalog_models(serving_subset: Path, tmp_path: Path) -> None:
    options = CalibrateFitOptions(
        serving_files=(serving_subset,), engine="vllm", fit_models=("nope-9b",), write=tmp_path / "x.yaml"
    )
    with pytest.raises(InputError, match="--fit-models"):  # resolved before anything is fitted or written
        run_fit(options)
    assert not (tmp_path / "x.yaml").exists()


# --------------------------------------------------------------------------- planner calibrate run

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _has_cuda() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(_has_cuda(), reason="this machine has a CUDA GPU: calibrate run would measure it")
def test_run_microbench_refuses_a_machine_without_a_gpu(tmp_path: Path) -> None:
    lines: list[str] = []
    with pytest.raises(InputError) as info:
        run_microbench(CalibrateRunOptions(gpu="h100-sxm"), progress=lines.append)
    needle = "calibrate run needs PyTorch" if not HAS_TORCH else "calibrate run needs an NVIDIA GPU"
    assert info.value.message.startswith(needle)
    assert lines == []  # refused before anything was timed
    out_csv = tmp_path / "m.csv"
    code, out, err = cli("calibrate", "run", "--gpu", "h100-sxm", "-o", str(out_csv))
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == f"error: {info.value.message}"
    assert not out_csv.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (CalibrateRunOptions(gpu="h100-sxm", device="tpu"), "--device tpu: use cuda or cpu"),
        (
            CalibrateRunOptions(gpu="h100-sxm", power=True, tp=(2,)),
            "--power: board power is read on a CUDA GPU at TP 1 only (--device cuda, --tp 1)",
        ),
        (CalibrateRunOptions(gpu="h100-sxm", power_seconds=0.0), "--power-seconds 0.0: must be positive"),
        (CalibrateRunOptions(gpu="nope-9000"), "--gpu"),
    ],
)
def test_run_microbench_checks_its_options_first(options: CalibrateRunOptions, message: str) -> None:
    with pytest.raises(InputError) as info:
        run_microbench(options)
    assert message in info.value.message
