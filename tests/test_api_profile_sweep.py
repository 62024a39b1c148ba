"""One door per command: the library's Options -> run functions of profile, trace synth, sweep, catalog and schema
give what the CLI prints (the CLI only parses flags, renders and writes), and ``planner sweep`` reads its workload once."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from conftest import REPO, Run, assert_input_error, count_disk_reads

from planner.api.catalog import (
    CatalogListOptions,
    CatalogShowOptions,
    CatalogValidateOptions,
    run_catalog_list,
    run_catalog_show,
    run_catalog_validate,
)
from planner.api.profile import ProfileOptions, run_profile
from planner.api.schema import SCHEMA_DOCUMENTS, SchemaOptions, run_schema
from planner.api.sweep import SweepOptions, run_sweep
from planner.api.trace import TraceSynthOptions, run_trace_synth, synth_trace
from planner.errors import InputError
from planner.report.envelope import envelope, to_json
from planner.report.profile import profile_data

# library = CLI double runs of every command: the full lane (.ci/run) runs them, the fast lane leaves them out
pytestmark = pytest.mark.slow

TRACES = REPO / "examples" / "traces"
CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"
CLI = REPO / "planner" / "cli"


def _json(run_cli: Run, *args: str) -> str:
    code, out, err = run_cli(*args, "-f", "json")
    assert code == 0, err
    return out


# ------------------------------------------------------------------------------------------------ profile


@pytest.mark.parametrize("trace", ["mooncake.jsonl", "burstgpt.csv"])
def test_profile_library_matches_cli(run_cli: Run, trace: str) -> None:
    path = TRACES / trace
    run = run_profile(ProfileOptions(trace=path, classes="auto"))
    lib = to_json(envelope("profile", "ok", run.inputs, profile_data(run.profile, run.phase), run.warnings))
    assert lib == _json(run_cli, "profile", str(path), "--classes", "auto")
    assert run.workload is None and run.workload_text is None
    assert run.files_read == (path,)


def test_profile_with_model_and_workload_file(run_cli: Run, tmp_path: Path) -> None:
    trace = TRACES / "mooncake.jsonl"
    out = tmp_path / "wl.yaml"
    flags = ("--model", "llama-3.1-8b", "--ttft-p99-ms", "2000", "-o", str(out))
    cli_text = _json(run_cli, "profile", str(trace), *flags)
    written = out.read_text(encoding="utf-8")
    out.unlink()
    run = run_profile(ProfileOptions(trace=trace, model="llama-3.1-8b", ttft_p99_ms=2000.0, workload_file=out))
    assert not out.exists()  # the library builds the document; the command writes it
    assert run.phase is not None and run.workload is not None
    assert run.workload_text == written
    assert run.inputs["workload_file"] == str(out)
    assert any("written without slo" in w for w in run.warnings)
    assert to_json(envelope("profile", "ok", run.inputs, profile_data(run.profile, run.phase), run.warnings)) == cli_text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ProfileOptions(trace=TRACES / "vidur.csv", classes="many"), "--classes many: give a number of classes or auto"),
        (ProfileOptions(trace=TRACES / "vidur.csv", precision="fp4"), "--precision fp4: use bf16 or fp8"),
        (ProfileOptions(trace=TRACES / "vidur.csv", workload_file=Path("x.yaml")), "-o writes a workload for planner size"),
        (ProfileOptions(trace=TRACES / "vidur.csv", ttft_p99_ms=0.0), "--ttft-p99-ms 0.0: must be a positive number"),
    ],
)
def test_profile_options_are_checked_with_the_commands_messages(options: ProfileOptions, message: str) -> None:
    with pytest.raises(InputError) as exc:
        run_profile(options)
    assert message in exc.value.message


def test_profile_progress_callback_is_called() -> None:
    seen: list[tuple[int, int]] = []
    run_profile(ProfileOptions(trace=TRACES / "mooncake.jsonl", progress=lambda done, total: seen.append((done, total))))
    assert seen and seen[-1][0] == seen[-1][1] > 0


# ------------------------------------------------------------------------------------------------ trace synth


def test_trace_synth_library_writes_what_the_cli_writes(run_cli: Run, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    code, _, err = run_cli(
        "trace", "synth", "-n", "300", "--rate-rps", "3", "--seed", "5", "--format-out", "burstgpt", "-o", str(a)
    )
    assert code == 0, err
    run = run_trace_synth(TraceSynthOptions(path=b, file_format="burstgpt", requests=300, rate_rps=3.0, seed=5))
    assert b.read_bytes() == a.read_bytes()
    assert run.trace.arrival_s.size == 300
    assert synth_trace(run.options).arrival_s.tolist() == run.trace.arrival_s.tolist()
    with pytest.raises(InputError, match="--format-out parquet: use one of"):
        run_trace_synth(TraceSynthOptions(path=b, file_format="parquet"))


# ------------------------------------------------------------------------------------------------ sweep


def test_sweep_library_matches_cli(run_cli: Run) -> None:
    cli_text = _json(run_cli, "sweep", str(CHATBOT), "--vary", "rate_rps=2,8")
    run = run_sweep(SweepOptions(workload_file=CHATBOT, vary="rate_rps=2,8"))
    assert to_json(envelope("sweep", "ok", run.inputs, run.data)) == cli_text
    assert [p["value"] for p in run.data["points"]] == [2.0, 8.0]
    assert run.inputs["workload_sha256"] == run.source.sha256
    assert run.source.text == CHATBOT.read_text(encoding="utf-8")


def test_sweep_reads_the_workload_file_once(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_disk_reads(monkeypatch, CHATBOT)[CHATBOT.resolve()]
    out = _json(run_cli, "sweep", str(CHATBOT), "--vary", "rate_rps=4", "-j", "1")
    assert len(calls) == 1, calls
    assert json.loads(out)["inputs"]["workload_sha256"]
    calls.clear()
    run_sweep(SweepOptions(workload_file=CHATBOT, vary="rate_rps=4", jobs=1))  # the library alone: once as well
    assert len(calls) == 1, calls


def test_sweep_errors_are_the_commands(run_cli: Run, tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    with pytest.raises(InputError, match="no such file"):
        run_sweep(SweepOptions(workload_file=missing, vary="rate_rps=4"))
    assert_input_error(run_cli("sweep", str(missing), "--vary", "rate_rps=4"), "no such file")
    with pytest.raises(InputError, match="unknown variable"):
        run_sweep(SweepOptions(workload_file=CHATBOT, vary="speed=4"))


# ------------------------------------------------------------------------------------------------ catalog, schema


@pytest.mark.parametrize("kind", [None, "gpus", "models", "engines"])
def test_catalog_list_library_matches_cli(run_cli: Run, kind: str | None) -> None:
    run = run_catalog_list(CatalogListOptions(kind=kind))
    args = ("catalog", "list") if kind is None else ("catalog", "list", kind)
    assert to_json(envelope("catalog list", "ok", run.inputs, run.data)) == _json(run_cli, *args)


def test_catalog_list_unknown_kind() -> None:
    with pytest.raises(InputError, match="catalog list racks: unknown kind"):
        run_catalog_list(CatalogListOptions(kind="racks"))


@pytest.mark.parametrize("entry", ["h200-sxm", "llama-3.1-8b", "meta-llama/Llama-3.1-70B", "vllm"])
def test_catalog_show_library_matches_cli(run_cli: Run, entry: str) -> None:
    run = run_catalog_show(CatalogShowOptions(entry_id=entry))
    assert to_json(envelope("catalog show", "ok", run.inputs, run.data)) == _json(run_cli, "catalog", "show", entry)
    assert run.kind in ("gpus", "models", "engines")


def test_catalog_validate_library_matches_cli(run_cli: Run) -> None:
    run = run_catalog_validate(CatalogValidateOptions())
    assert to_json(envelope("catalog validate", "ok", run.inputs, run.data)) == _json(run_cli, "catalog", "validate")
    assert run.counts["gpus"] == len(run.catalog.gpus)


@pytest.mark.parametrize("document", SCHEMA_DOCUMENTS)
def test_schema_library_matches_cli(run_cli: Run, document: str) -> None:
    code, out, err = run_cli("schema", document)
    assert code == 0, err
    run = run_schema(SchemaOptions(document=document))
    assert run.text == out
    assert json.loads(out) == run.schema


# ------------------------------------------------------------------------------------------------ the CLI's imports

ALLOWED_PLANNER_IMPORTS = ("planner.api", "planner.report", "planner.errors", "planner.io.output", "planner.cli._common")


@pytest.mark.parametrize("module", ["profile_cmd", "trace_cmd", "sweep_cmd", "catalog_cmd", "schema_cmd"])
def test_command_modules_import_only_the_door(module: str) -> None:
    tree = ast.parse((CLI / f"{module}.py").read_text(encoding="utf-8"))
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    bad = [
        n
        for n in names
        if n.startswith("planner") and not any(n == ok or n.startswith(ok + ".") for ok in ALLOWED_PLANNER_IMPORTS)
    ]
    assert bad == [], bad
