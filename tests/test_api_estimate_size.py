"""One door per command: ``planner estimate prefill|decode``, ``planner estimate serve`` and ``planner size``
as library calls (``run_estimate``, ``run_serve``, ``run_size`` of their Options) give the document the CLI
prints, and a ``planner size`` run reads its workload file from disk once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Run, count_disk_reads

from planner.api.estimate import EstimateOptions, EstimateRun, run_estimate
from planner.api.serve import ServeOptions, ServeRequest, run_serve
from planner.api.size import SizeInfeasibleError, SizeOptions, SizeRun, run_size
from planner.domain import Catalog
from planner.errors import InfeasibleError, InputError
from planner.report.engine import engines_data
from planner.report.envelope import envelope, to_json
from planner.report.estimate import estimate_data
from planner.report.serve import grid_row, serve_data
from planner.report.simulate import verification_data
from planner.report.size import size_data

# library = CLI double runs of every command: the full lane (.ci/run) runs them, the fast lane leaves them out
pytestmark = pytest.mark.slow

CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"
CODE = REPO / "examples" / "workloads" / "code_completion.yaml"


def _cli_json(run_cli: Run, *args: str) -> dict[str, Any]:
    code, out, err = run_cli(*args, "-f", "json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _doc(command: str, inputs: dict[str, Any], data: dict[str, Any], warnings: tuple[str, ...]) -> dict[str, Any]:
    """The document as the CLI writes it (the envelope, through its JSON)."""
    doc: dict[str, Any] = json.loads(to_json(envelope(command, "ok", inputs, data, warnings)))
    return doc


def _size_doc(run: SizeRun) -> dict[str, Any]:
    data = size_data(run.result, run.catalog)
    if run.comparison is not None:
        data["engines"] = engines_data(run.comparison)
    if run.simulation is not None:
        data["verification"] = verification_data(run.simulation)
    return _doc("size", run.inputs, data, run.warnings)


# ------------------------------------------------------------------------- estimate prefill|decode


@pytest.mark.parametrize(
    ("options", "argv"),
    [
        (
            EstimateOptions(phase="prefill", model="llama-3.1-70b", gpu="h100-sxm", tp=4, tokens=2048),
            ["prefill", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--tp", "4", "--tokens", "2048"],
        ),
        (
            EstimateOptions(phase="decode", model="llama-3.1-8b", gpu="a100-sxm-80gb", tp=1, batch=32, context=3000),
            ["decode", "-m", "llama-3.1-8b", "-g", "a100-sxm-80gb", "--tp", "1", "--batch", "32", "--context", "3000"],
        ),
        (  # fp8, another engine, a KV cache that overflows: the warning travels
            EstimateOptions(
                phase="decode",
                model="llama-3.1-70b",
                gpu="h100-sxm",
                tp=4,
                precision="fp8",
                batch=400,
                context=8000,
                engine="sglang",
            ),
            [
                "decode",
                "-m",
                "llama-3.1-70b",
                "-g",
                "h100-sxm",
                "--tp",
                "4",
                "--precision",
                "fp8",
                "--batch",
                "400",
                "--context",
                "8000",
                "--engine",
                "sglang",
            ],
        ),
    ],
    ids=["prefill", "decode", "decode-fp8-sglang"],
)
def test_run_estimate_is_the_cli_document(options: EstimateOptions, argv: list[str], run_cli: Run) -> None:
    run = run_estimate(options)
    assert isinstance(run, EstimateRun) and run.options is options
    assert run.command == f"estimate {options.phase}"
    assert run.sources == ()
    assert _doc(run.command, run.inputs, estimate_data(run.result), run.warnings) == _cli_json(run_cli, "estimate", *argv)


def test_run_estimate_takes_a_catalog_and_keeps_errors(catalog: Catalog) -> None:
    options = EstimateOptions(phase="decode", model="llama-3.1-8b", gpu="h100-sxm", tp=1, batch=8, context=1000)
    assert run_estimate(options, catalog).result.step == run_estimate(options).result.step
    with pytest.raises(InputError, match="--context is required for a decode estimate"):
        run_estimate(EstimateOptions(phase="decode", model="llama-3.1-8b", gpu="h100-sxm", tp=1), catalog)


# -------------------------------------------------------------------------------- estimate serve


def test_run_serve_is_the_cli_document(run_cli: Run) -> None:
    options = ServeOptions(
        model="qwen3-32b",
        isl=8000,
        osl=1000,
        concurrency=32,
        mode="disaggregated",
        prefill_gpu="h200-sxm",
        prefill_tp=2,
        decode_gpu="h200-sxm",
        decode_tp=2,
        engine="sglang",
    )
    run = run_serve(options)
    assert run.sources == () and len(run.results) == 1
    want = _cli_json(
        run_cli, "estimate", "serve", "-m", "qwen3-32b", "--isl", "8000", "--osl", "1000", "--concurrency", "32",
        "--mode", "disaggregated", "--prefill-gpu", "h200-sxm", "--prefill-tp", "2", "--decode-gpu", "h200-sxm",
        "--decode-tp", "2", "--engine", "sglang",
    )  # fmt: skip
    assert _doc("estimate serve", run.inputs, serve_data(run.result), run.warnings) == want
    assert run.warnings  # no --link: the KV transfer is not modelled


def test_run_serve_of_a_grid_is_the_cli_document(run_cli: Run, tmp_path: Path) -> None:
    grid = tmp_path / "grid.csv"
    grid.write_text("isl,osl,concurrency,engine\n1000,100,1,vllm\n1000,100,8,trtllm\n4000,500,32,\n")
    run = run_serve(ServeOptions(model="llama-3.1-8b", gpu="h200-sxm", grid=grid))
    assert [s.path for s in run.sources] == [str(grid)]
    assert run.sources[0].sha256 == hashlib.sha256(grid.read_bytes()).hexdigest()
    assert run.input_paths == (grid,)
    assert run.inputs == {"grid": str(grid), "points": 3}
    assert [r.request.where for r in run.results] == [f"{grid}:2", f"{grid}:3", f"{grid}:4"]
    with pytest.raises(ValueError, match=r"use \.results"):
        _ = run.result
    data = {"points": [grid_row(r) for r in run.results]}
    want = _cli_json(run_cli, "estimate", "serve", "--model", "llama-3.1-8b", "--gpu", "h200-sxm", "--grid", str(grid))
    assert _doc("estimate serve", run.inputs, data, run.warnings) == want


def test_serve_options_make_the_request(catalog: Catalog) -> None:
    options = ServeOptions(model="llama-3.1-8b", gpu="h100-sxm", isl=1000, osl=200, concurrency=4)
    fields = options.point_fields()
    assert "grid" not in fields and "catalog_dirs" not in fields
    run = run_serve(options, catalog)
    assert run.result.request == ServeRequest(**fields)
    with pytest.raises(InputError, match=r"^--osl is required \(or give a --grid file\)$"):
        run_serve(ServeOptions(model="llama-3.1-8b", gpu="h100-sxm", isl=1000, concurrency=4), catalog)


# ------------------------------------------------------------------------------------------ size


def test_run_size_of_a_file_is_the_cli_document(run_cli: Run) -> None:
    run = run_size(SizeOptions(workload_file=CHATBOT))
    assert [s.path for s in run.sources] == [str(CHATBOT)]
    assert run.input_paths == (CHATBOT,)
    assert run.inputs["workload_sha256"] == hashlib.sha256(CHATBOT.read_bytes()).hexdigest() == run.sources[0].sha256
    assert run.comparison is None and run.simulation is None
    assert _size_doc(run) == _cli_json(run_cli, "size", str(CHATBOT))


def test_run_size_of_flags_is_the_cli_document(run_cli: Run) -> None:
    options = SizeOptions(
        model="llama-3.1-8b", rate_rps=5, isl=1000, osl=200, ttft_p99_ms=800, tpot_p99_ms=60,
        prefill_gpus=("h100-sxm",), decode_gpus=("h100-sxm", "a100-sxm-80gb"), solver="cbc",
    )  # fmt: skip
    run = run_size(options)
    assert run.sources == () and "workload_file" not in run.inputs and run.inputs["solver"] == "cbc"
    want = _cli_json(
        run_cli, "size", "--model", "llama-3.1-8b", "--rate-rps", "5", "--isl", "1000", "--osl", "200",
        "--ttft-p99-ms", "800", "--tpot-p99-ms", "60", "--prefill-gpus", "h100-sxm",
        "--decode-gpus", "h100-sxm,a100-sxm-80gb", "--solver", "cbc",
    )  # fmt: skip
    assert _size_doc(run) == want


def test_run_size_under_several_engines_is_the_cli_document(run_cli: Run) -> None:
    run = run_size(SizeOptions(workload_file=CODE, engine="vllm,sglang"))
    assert run.comparison is not None and [r.engine.id for r in run.comparison.runs] == ["vllm", "sglang"]
    assert run.catalog is run.comparison.best.catalog
    assert _size_doc(run) == _cli_json(run_cli, "size", str(CODE), "--engine", "vllm,sglang")


def test_run_size_infeasible_carries_the_inputs(run_cli: Run) -> None:
    options = SizeOptions(model="llama-3.1-70b", rate_rps=10, isl=30000, osl=200, ttft_p99_ms=300, tpot_p99_ms=60)
    with pytest.raises(SizeInfeasibleError) as info:
        run_size(options)
    exc = info.value
    assert isinstance(exc, InfeasibleError)
    code, out, err = run_cli(
        "size", "--model", "llama-3.1-70b", "--rate-rps", "10", "--isl", "30000", "--osl", "200",
        "--ttft-p99-ms", "300", "--tpot-p99-ms", "60", "-f", "json",
    )  # fmt: skip
    assert code == 3
    assert err.startswith(f"error: {exc.message}\n")
    diag = {"message": exc.message, "hint": exc.hint, "diagnosis": exc.diagnosis}
    assert json.loads(to_json(envelope("size", "infeasible", exc.inputs, diag))) == json.loads(out)
    assert set(exc.inputs) == {"workload", "solver", "engine"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            SizeOptions(workload_file=CHATBOT, model="llama-3.1-8b", isl=100),
            f"give a workload file or flags, not both (--model, --isl with {CHATBOT})",
        ),
        (
            SizeOptions(workload_file=CHATBOT, links=()),
            f"give a workload file or flags, not both (hardware flags with {CHATBOT})",
        ),
        (
            SizeOptions(model="llama-3.1-8b", isl=100),
            "size: give WORKLOAD.yaml, or all of --model --rate-rps --isl --osl --ttft-p99-ms --tpot-p99-ms "
            "(missing --rate-rps, --osl, --ttft-p99-ms, --tpot-p99-ms)",
        ),
        (SizeOptions(workload_file=CHATBOT, solver="glpk"), "--solver glpk: use highs or cbc"),  # type: ignore[arg-type]
    ],
    ids=["file-and-flags", "file-and-hardware", "missing-flags", "solver"],
)
def test_run_size_errors_are_the_cli_errors(options: SizeOptions, message: str) -> None:
    with pytest.raises(InputError) as info:
        run_size(options)
    assert info.value.message == message


# ------------------------------------------------------------------------------------ read once


def _count_reads(monkeypatch: pytest.MonkeyPatch, target: Path) -> list[str]:
    return count_disk_reads(monkeypatch, target)[target.resolve()]


def test_size_cli_reads_the_workload_file_once(run_cli: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    workload = tmp_path / "chatbot.yaml"
    workload.write_bytes(CHATBOT.read_bytes())
    calls = _count_reads(monkeypatch, workload)
    code, out, err = run_cli("size", str(workload), "-f", "json")
    assert code == 0, err
    assert len(calls) == 1, calls
    assert json.loads(out)["inputs"]["workload_sha256"] == hashlib.sha256(workload.read_bytes()).hexdigest()


def test_run_size_reads_the_workload_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_reads(monkeypatch, CHATBOT)
    run_size(SizeOptions(workload_file=CHATBOT))
    assert len(calls) == 1, calls
