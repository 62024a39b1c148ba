"""The command line, run in-process through planner.cli.main (exit codes, envelope, errors)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Run, assert_input_error, command_paths

DECODE = [
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
]
ENVELOPE_KEYS = {"schema_version", "planner_version", "command", "status", "inputs", "data", "warnings"}


def test_estimate_decode_json(run_cli: Run) -> None:
    code, out, err = run_cli(*DECODE, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) >= ENVELOPE_KEYS
    assert doc["schema_version"] == 1
    assert doc["command"] == "estimate decode"
    assert doc["status"] == "ok"
    assert doc["warnings"] == []
    data = doc["data"]
    for key in ("latency_ms", "throughput_tokens_per_s", "bound", "fits"):
        assert key in data
    assert data["bound"] in ("compute", "memory", "overhead")
    assert data["fits"] is True
    assert data["latency_ms"] > 0
    # throughput is batch / latency
    assert data["throughput_tokens_per_s"] == pytest.approx(64 / (data["latency_ms"] / 1e3), rel=1e-12)
    assert data["memory"]["kv_bytes_per_token"] == 327680
    # vLLM's KV-pool rule on 4x H100 (79.18 GiB CUDA memory each): 250 under the bare 0.9·HBM − weights rule
    assert data["memory"]["max_batch_at_context"] == 237
    assert doc["inputs"]["gpu"] == "h100-sxm"
    assert doc["inputs"]["tp"] == 4
    from planner import __version__

    assert doc["planner_version"] == __version__


def test_estimate_json_matches_library(run_cli: Run) -> None:
    from planner import api

    r = api.estimate("decode", model="llama-3.1-70b", gpu="h100-sxm", tp=4, batch=64, context=2048)
    code, out, _ = run_cli(*DECODE, "--format", "json")
    assert code == 0
    assert json.loads(out)["data"]["latency_ms"] == r.step.latency_s * 1e3


def test_estimate_json_is_byte_identical(run_cli: Run) -> None:
    first = run_cli(*DECODE, "--format", "json")
    second = run_cli(*DECODE, "--format", "json")
    assert first[0] == second[0] == 0
    assert first[1] == second[1]
    assert list(json.loads(first[1])) == sorted(json.loads(first[1]))  # keys sorted


def test_estimate_accepts_id_spellings(run_cli: Run) -> None:
    code, out, _ = run_cli(
        "estimate", "decode", "--model", "LLAMA_3_1_70B", "--gpu", "H100_SXM", "--tp", "4", "--batch", "64", "--context", "2048",
        "--format", "json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["inputs"]["model"] == "llama-3.1-70b"


def test_estimate_prefill_table(run_cli: Run) -> None:
    code, out, err = run_cli(
        "estimate", "prefill", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "1", "--tokens", "2048"
    )
    assert code == 0, err
    assert "latency" in out.lower()
    assert "h100-sxm" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


@pytest.mark.parametrize("fmt", ["yaml", "csv", "markdown"])
def test_estimate_other_formats(run_cli: Run, fmt: str) -> None:
    code, out, err = run_cli(*DECODE, "--format", fmt)
    assert code == 0, err
    assert "latency_ms" in out


def test_output_file(run_cli: Run, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    code, out, err = run_cli(*DECODE, "--format", "json", "-o", str(target))
    assert code == 0, err
    assert out == ""
    assert json.loads(target.read_text())["data"]["fits"] is True
    _, direct, _ = run_cli(*DECODE, "--format", "json")
    assert target.read_text() == direct


def test_warning_goes_to_stderr_and_json(run_cli: Run) -> None:
    args = [
        "estimate",
        "decode",
        "--model",
        "llama-3.1-70b",
        "--gpu",
        "h100-sxm",
        "--tp",
        "2",
        "--batch",
        "64",
        "--context",
        "2048",
    ]
    code, out, _ = run_cli(*args, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["data"]["fits"] is False  # 64 > 13 sequences of 2048 tokens (vLLM pool, tests/test_perf.py)
    assert any("largest batch: 13" in w for w in doc["warnings"])
    code, out, err = run_cli(*args)
    assert code == 0
    assert "warning:" in err
    assert "warning:" not in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--gpu", "h100-sx"], ["unknown GPU id 'h100-sx'", "hint: did you mean", "h100-sxm"]),
        (["--gpu", "h100-sxm", "--model", "llama-9-70b"], ["unknown model id 'llama-9-70b'", "hint:"]),
        (["--gpu", "h100-sxm", "--batch", "0"], ["--batch"]),
        (["--gpu", "a100-sxm-80gb", "--precision", "fp8"], ["a100-sxm-80gb", "fp8"]),
        (["--gpu", "h100-sxm", "--model", "llama-3.1-405b", "--tp", "1"], ["does not fit on 1x h100-sxm"]),
        (["--gpu", "h100-sxm", "--tp", "3"], ["--tp 3"]),
        (["--gpu", "h100-sxm", "--bogus-flag"], ["--bogus-flag"]),
        (["--gpu", "h100-sxm", "--batch", "many"], ["--batch"]),
        (["--gpu", "h100-sxm", "--precision", "int4"], ["--precision"]),
    ],
)
def test_estimate_decode_usage_errors(run_cli: Run, args: list[str], needles: list[str]) -> None:
    base = {"--model": "llama-3.1-70b", "--tp": "4", "--batch": "8", "--context": "2048"}
    argv = ["estimate", "decode"]
    given = {args[i] for i in range(len(args)) if args[i].startswith("--")}
    for k, v in base.items():
        if k not in given:
            argv += [k, v]
    assert_input_error(run_cli(*argv, *args), *needles)


def test_negative_tokens(run_cli: Run) -> None:
    assert_input_error(
        run_cli("estimate", "prefill", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "8", "--tokens", "-5"),
        "--tokens",
        "-5",
    )


def test_missing_required_option(run_cli: Run) -> None:
    assert_input_error(run_cli("estimate", "prefill", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "8"), "--tokens")


def test_unknown_command(run_cli: Run) -> None:
    assert_input_error(run_cli("frobnicate"))


def test_malformed_catalog_dir(run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "gpus.yaml"
    path.write_text("schema_version: 1\ngpus:\n  h100-sxm:\n    name: x\n    name: y\n")
    assert_input_error(run_cli(*DECODE, "--catalog-dir", str(tmp_path)), f"{path}:5", "duplicate key 'name'")


def test_missing_catalog_dir(run_cli: Run, tmp_path: Path) -> None:
    assert_input_error(run_cli("catalog", "validate", "--catalog-dir", str(tmp_path / "absent")), "absent")


def test_catalog_dir_overlay(run_cli: Run, tmp_path: Path) -> None:
    """A user efficiency.yaml that re-fits h100-sxm with 10x the per-sequence decode cost changes the estimate."""
    (tmp_path / "efficiency.yaml").write_text(
        "schema_version: 1\nefficiency:\n  h100-sxm:\n"
        "    compute_frac: 0.6\n    attention_compute_frac: 0.3\n    memory_frac: 0.7\n"
        "    prefill_fixed_s: 0.001\n    decode_fixed_s: 0.001\n    decode_per_seq_s: 0.001\n"
        "    allreduce_latency_s: 0.00001\n    allreduce_bandwidth_frac: 0.5\n"
        "    fitted_on: my bench\n    source: splitwise-perf-model\n    as_of: '2025-01-01'\n"
    )
    code, out, err = run_cli(*DECODE, "--format", "json", "--catalog-dir", str(tmp_path))
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["efficiency"]["fitted_on"] == "my bench"
    # overhead = 1 ms + 64 * 1 ms
    assert data["breakdown_ms"]["overhead"] == pytest.approx(65.0, rel=1e-12)


def test_catalog_list(run_cli: Run) -> None:
    code, out, err = run_cli("catalog", "list")
    assert code == 0, err
    for name in ("h100-sxm", "llama-3.1-70b", "ib-ndr-400"):
        assert name in out
    code, out, _ = run_cli("catalog", "list", "gpus", "--format", "json")
    assert code == 0
    ids = [e["id"] for e in json.loads(out)["data"]["gpus"]]
    assert "b200" in ids
    assert ids == sorted(ids)
    assert_input_error(run_cli("catalog", "list", "widgets"), "widgets")


def test_catalog_show(run_cli: Run) -> None:
    code, out, err = run_cli("catalog", "show", "H100_SXM", "--format", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["kind"] == "gpus"
    assert data["entry"]["id"] == "h100-sxm"
    assert data["sources"]
    assert data["sources"]["tdp_w"]["as_of"]
    assert data["efficiency"]["gpu"] == "h100-sxm"
    code, out, _ = run_cli("catalog", "show", "llama-3.1-70b")
    assert code == 0
    assert "num_layers" in out
    assert_input_error(run_cli("catalog", "show", "h100-sx"), "h100-sx", "h100-sxm")


def test_catalog_show_sources_every_figure(run_cli: Run) -> None:
    code, out, _ = run_cli("catalog", "show", "h100-sxm", "--format", "json")
    assert code == 0
    data = json.loads(out)["data"]
    missing = sorted(set(data["entry"]) - {"id", "name"} - set(data["sources"]))
    assert missing == []


def test_catalog_validate(run_cli: Run) -> None:
    code, out, err = run_cli("catalog", "validate", "--format", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["valid"] is True
    assert data["counts"]["gpus"] >= 8
    assert data["counts"]["efficiency"] == data["counts"]["gpus"]
    code, out, err = run_cli("catalog", "validate")
    assert code == 0, err


def test_every_command_is_walked() -> None:
    paths = [" ".join(p) for p in command_paths()]
    for expected in (
        "",
        "catalog",
        "catalog list",
        "catalog show",
        "catalog validate",
        "estimate prefill",
        "estimate decode",
        "calibrate fit",
    ):
        assert expected in paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "planner")
def test_help_of_every_command(run_cli: Run, path: list[str]) -> None:
    code, out, err = run_cli(*path, "--help")
    assert code == 0, err
    assert "Usage" in out
    assert "Traceback" not in out + err


@pytest.mark.slow
def test_calibrate_fit_writes_overlay(run_cli: Run, tmp_path: Path) -> None:
    from planner.io.catalog import load_catalog

    splitwise = Path(__file__).resolve().parent.parent / "catalogs" / "measurements" / "splitwise" / "perf_model.csv"
    target = tmp_path / "efficiency.yaml"
    code, out, err = run_cli(
        "calibrate", "fit", "--splitwise", str(splitwise), "--write", str(target), "--source", "splitwise-perf-model",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    # stderr is a rich console that may wrap a long path; the message is there once the wrap is undone
    assert "wrote" in err
    assert str(target) in err.replace("\n", "")
    fits = json.loads(out)
    assert fits["status"] == "ok"
    cat = load_catalog([tmp_path])  # an overlay without engine: applies to the selected (default) engine
    assert cat.efficiency["h100-sxm"].fitted_on.startswith("perf_model.csv")
    assert cat.efficiency["b200"].fitted_on == cat.engine_efficiency["vllm"]["b200"].fitted_on  # untouched: vLLM's


def test_calibrate_fit_needs_input(run_cli: Run) -> None:
    assert_input_error(run_cli("calibrate", "fit"), "--splitwise")


def test_python_dash_m() -> None:
    proc = subprocess.run([sys.executable, "-m", "planner", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "estimate" in proc.stdout
    assert "catalog" in proc.stdout
