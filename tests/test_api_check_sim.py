"""One door per command (check, simulate, report): the library's Options and run functions give what the CLI
prints; a check reads each input from disk once; the simulator reads no files; one reader of saved envelopes."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, Run, assert_input_error, count_disk_reads

from planner.api.check import CheckOptions, CheckRun, run_check
from planner.api.report import ReportOptions, run_report
from planner.api.simulate import SimOptions, SimulateOptions, run_simulate
from planner.errors import InputError
from planner.io.envelope import envelope_command, read_envelope
from planner.report.check import check_data
from planner.report.envelope import envelope, to_json
from planner.report.simulate import simulate_data

# library = CLI double runs of every command: the full lane (.ci/run) runs them, the fast lane leaves them out
pytestmark = pytest.mark.slow

PROPOSALS = REPO / "examples" / "proposals"
CHATBOT = PROPOSALS / "chatbot.yaml"  # names its workload: ../workloads/chatbot.yaml
CHATBOT_WORKLOAD = REPO / "examples" / "workloads" / "chatbot.yaml"
PLAN = PROPOSALS / "chatbot_plan.yaml"  # a planner size plan: its workload inline
FAILING = PROPOSALS / "fail_slo001_ttft.yaml"


def _check_json(run: CheckRun) -> str:
    return to_json(envelope("check", run.status, run.inputs, check_data(run.result), run.warnings))


# ------------------------------------------------------------------------------------------- check


@pytest.mark.parametrize("proposal", [CHATBOT, PLAN, FAILING], ids=lambda p: p.stem)
def test_run_check_gives_the_cli_json(run_cli: Run, proposal: Path) -> None:
    code, out, err = run_cli("check", str(proposal), "--skip", "eff001", "--fail-on", "warning", "-f", "json")
    run = run_check(CheckOptions(proposal_file=proposal, skip=("eff001",), fail_on="warning"))
    assert _check_json(run) == out, err
    assert code == (1 if run.failed else 0)
    assert run.inputs["proposal_sha256"] == hashlib.sha256(proposal.read_bytes()).hexdigest()
    assert run.inputs["skip"] == ["EFF001"]


def test_check_run_names_its_sources() -> None:
    run = run_check(CheckOptions(proposal_file=CHATBOT))
    assert [Path(s.path).resolve() for s in run.sources] == [CHATBOT.resolve(), CHATBOT_WORKLOAD.resolve()]
    assert [s.sha256 for s in run.sources] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in (CHATBOT, CHATBOT_WORKLOAD)]
    assert [s.path for s in run_check(CheckOptions(proposal_file=PLAN)).sources] == [str(PLAN)]


def test_no_fail_is_an_advisory_run(run_cli: Run) -> None:
    run = run_check(CheckOptions(proposal_file=FAILING, no_fail=True))
    assert run.result.verdict == "fail" and run.status == "check_failed" and not run.failed
    code, out, _ = run_cli("check", str(FAILING), "--no-fail", "-f", "json")
    assert code == 0 and out == _check_json(run)


def test_a_check_reads_the_proposal_and_its_workload_once(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = count_disk_reads(monkeypatch, CHATBOT, CHATBOT_WORKLOAD)
    code, _, err = run_cli("check", str(CHATBOT), "-f", "json")
    assert code == 0, err
    assert [len(v) for v in reads.values()] == [1, 1], reads


def test_library_check_reads_each_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_check outside a CLI run: still one read of each (the run is wrapped in reading_once)."""
    reads = count_disk_reads(monkeypatch, CHATBOT, CHATBOT_WORKLOAD)
    run_check(CheckOptions(proposal_file=CHATBOT))
    assert [len(v) for v in reads.values()] == [1, 1], reads


# ---------------------------------------------------------------------------------------- simulate


def _simulate_json(options: SimulateOptions) -> str:
    run = run_simulate(options)
    return to_json(envelope("simulate", run.status, run.inputs, simulate_data(run.simulation), run.warnings))


def test_run_simulate_gives_the_cli_json(run_cli: Run) -> None:
    code, out, err = run_cli("simulate", str(PLAN), "-n", "1500", "--seed", "3", "--routing", "rr", "-f", "json")
    assert code == 0, err
    options = SimulateOptions(proposal_file=PLAN, sim=SimOptions(requests=1500, seed=3, routing="rr"))
    assert _simulate_json(options) == out


def test_run_simulate_of_a_trace_gives_the_cli_json(run_cli: Run, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    rows = [f"{i * 0.1:.3f},{1000 + 10 * i},{50 + i}" for i in range(200)]
    trace.write_text("timestamp,input_tokens,output_tokens\n" + "\n".join(rows) + "\n")
    code, out, err = run_cli("simulate", str(CHATBOT), "--trace", str(trace), "-f", "json")
    assert code == 0, err
    run = run_simulate(SimulateOptions(proposal_file=CHATBOT, sim=SimOptions(trace=trace)))
    assert run.inputs["trace_sha256"] == hashlib.sha256(trace.read_bytes()).hexdigest()
    assert run.simulation.source == str(trace) and len(run.simulation.result.requests) == 200
    assert to_json(envelope("simulate", run.status, run.inputs, simulate_data(run.simulation), run.warnings)) == out
    assert [Path(s.path).resolve() for s in run.sources] == [CHATBOT.resolve(), CHATBOT_WORKLOAD.resolve()]


def test_the_simulator_takes_arrays_not_paths(tmp_path: Path) -> None:
    from planner import api
    from planner.domain import Trace
    from planner.sim import simulate

    run = run_simulate(SimulateOptions(proposal_file=PLAN, sim=SimOptions(requests=300)))
    wl, dep, cat = run.proposal.workload, run.proposal.deployment, run.catalog
    trace = Trace(
        arrival_s=run.simulation.result.requests.arrival_s.copy(),
        input_tokens=run.simulation.result.requests.input_tokens.copy(),
        output_tokens=run.simulation.result.requests.output_tokens.copy(),
    )
    sim = simulate(wl, dep, cat, SimOptions(seed=1), trace=trace)
    assert sim.source == "trace" and len(sim.result.requests) == 300
    with pytest.raises(ValueError, match="reads no files"):
        simulate(wl, dep, cat, SimOptions(trace=tmp_path / "t.csv"))
    # the api reads SimOptions.trace for its callers, with the same errors as the CLI
    with pytest.raises(InputError, match=r"nope\.csv"):
        api.simulate(wl, dep, cat, SimOptions(trace=tmp_path / "nope.csv"))
    with pytest.raises(InputError, match="--routing random"):  # the options are checked before the trace is read
        api.simulate(wl, dep, cat, SimOptions(trace=tmp_path / "nope.csv", routing="random"))


def test_planner_sim_does_not_import_planner_io() -> None:
    code = "import json, sys\nimport planner.sim\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('planner'))))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert "planner.sim" in loaded
    assert [m for m in loaded if m == "planner.io" or m.startswith("planner.io.")] == []
    # nor lazily, inside a function
    for path in sorted((REPO / "planner" / "sim").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            assert not any(n == "planner.io" or n.startswith("planner.io.") for n in names), (path.name, names)


# ------------------------------------------------------------------------------------------ report


def test_run_report_of_a_sweep_gives_the_cli_page(run_cli: Run, tmp_path: Path) -> None:
    from planner.report.html import sweep_html

    code, out, err = run_cli("sweep", str(CHATBOT_WORKLOAD), "--vary", "rate_rps=2,8", "-f", "json")
    assert code == 0, err
    saved = tmp_path / "sweep.json"
    saved.write_text(out)
    code, _, err = run_cli("report", str(saved), "--html", str(tmp_path / "a.html"))
    assert code == 0, err
    run = run_report(ReportOptions(result_file=saved))
    assert run.command == "sweep" and run.sweeps is None
    assert run.sources[0].sha256 == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert sweep_html(run.doc) == (tmp_path / "a.html").read_text()
    with pytest.raises(InputError, match="rendered as it was computed"):
        run_report(ReportOptions(result_file=saved, engine="sglang"))


def test_run_report_of_a_malformed_size_result(tmp_path: Path) -> None:
    saved = tmp_path / "size.json"
    saved.write_text('{"schema_version": 1, "command": "size", "status": "ok", "inputs": {}, "data": {}}')
    with pytest.raises(InputError) as info:
        run_report(ReportOptions(result_file=saved))
    assert info.value.message == f"{saved}: malformed size result (KeyError: 'workload')"


# ------------------------------------------------------------------------------------------ envelopes


def test_read_envelope_returns_the_document_and_its_source(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"schema_version": 1, "command": "sweep", "status": "ok", "inputs": {}, "data": {"x": 1}}\n')
    doc, source = read_envelope(path)
    assert doc["data"] == {"x": 1} and envelope_command(doc) == "sweep"
    assert source.path == str(path) and source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_envelope(path, ("size", "sweep"))[0] == doc


@pytest.mark.parametrize(
    "content",
    ['{"a": 1}', "[1, 2]", '{"schema_version": 2, "command": "size", "data": {}}', '{"schema_version": 1, "command": "size"}'],
)
def test_read_envelope_refuses_other_json(tmp_path: Path, content: str) -> None:
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        read_envelope(path)
    assert info.value.message == f"{path}: not a planner result (a JSON envelope with schema_version 1, command and data)"
    assert info.value.hint == "save a result with --format json"


def test_read_envelope_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("not json")
    with pytest.raises(InputError, match=r"x\.json: not JSON \(Expecting value at line 1\)"):
        read_envelope(path)
    path.write_text('{"schema_version": 1, "command": "estimate", "status": "ok", "data": {}}')
    with pytest.raises(InputError) as info:
        read_envelope(path, ("size", "sweep"))
    assert info.value.message == f"{path}: not a planner size or planner sweep result (schema_version 1)"
    with pytest.raises(InputError, match="no such file"):
        read_envelope(tmp_path / "missing.json")


def test_report_refuses_a_non_envelope_in_one_line(run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    assert_input_error(
        run_cli("report", str(path), "--html", str(tmp_path / "x.html")),
        "not a planner size or planner sweep result (schema_version 1)",
    )


# ------------------------------------------------------------------------------------------ the CLI


@pytest.mark.parametrize("module", ["check_cmd", "simulate_cmd", "report_cmd"])
def test_the_command_modules_go_through_the_door(module: str) -> None:
    allowed = ("planner.api", "planner.report", "planner.errors", "planner.io.output", "planner.cli._common")
    tree = ast.parse((REPO / "planner" / "cli" / f"{module}.py").read_text(encoding="utf-8"))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("planner"):
            used |= {node.module} if node.module != "planner" else {f"planner.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            used |= {a.name for a in node.names if a.name.startswith("planner")}
    assert sorted(m for m in used if not any(m == a or m.startswith(a + ".") for a in allowed)) == []
