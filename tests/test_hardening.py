"""Hardening guarantees of issue #7 that are not fuzzing: Ctrl-C, atomic outputs and the umask,
output directories, refusing to overwrite inputs, the solver time limit, every exit code through
main(), and byte-identical JSON across PYTHONHASHSEED values and catalog order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulp
import pytest
import yaml
from conftest import Run, assert_input_error

from planner.cli import main
from planner.errors import ExitCode, SolverError
from planner.io.catalog import ENV_VAR

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CHATBOT = EXAMPLES / "workloads" / "chatbot.yaml"
PROPOSAL = EXAMPLES / "proposals" / "chatbot.yaml"
FAILING_PROPOSAL = EXAMPLES / "proposals" / "fail_slo001_ttft.yaml"
TRACE = EXAMPLES / "traces" / "generic.csv"
ESTIMATE = ["estimate", "decode", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--tp", "4", "--batch", "8", "--context", "2000"]


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("error:")]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(mask: int) -> None:
        os.umask(mask)

    yield set_umask
    os.umask(old)


# --- Ctrl-C ----------------------------------------------------------------------------------


def test_interrupt_during_the_computation_exits_130_and_writes_nothing(
    tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planner import api

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "size", interrupted)
    out = tmp_path / "out" / "plan.json"
    code, stdout, err = run_cli("size", str(CHATBOT), "-f", "json", "-o", str(out))
    assert code == 130
    assert _error_lines(err) == ["error: interrupted"] and "Traceback" not in err
    assert not out.exists() and stdout == ""
    assert [p for p in _leftovers(out.parent) if p.endswith(".tmp")] == []


def test_interrupt_while_writing_leaves_no_partial_file(tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C between writing the temporary file and renaming it: no target, no temporary file."""
    import planner.io.output as output

    class InterruptedOs:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def replace(src: str, dst: str) -> None:
            assert Path(src).read_text().startswith("{")  # the whole text was in the temporary file
            raise KeyboardInterrupt

    monkeypatch.setattr(output, "os", InterruptedOs())
    out = tmp_path / "estimate.json"
    code, _, err = run_cli(*ESTIMATE, "-f", "json", "-o", str(out))
    assert code == 130, err
    assert _leftovers(tmp_path) == []


def test_interrupt_while_writing_a_trace_leaves_no_partial_file(
    tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import planner.io.traces as traces

    real = traces._write_arrow_csv

    def half_then_interrupt(fh: Any, header: list[str], columns: list[Any], chunk: int = 1_000_000) -> None:
        real(fh, header, [c[:5] for c in columns], chunk)
        raise KeyboardInterrupt

    monkeypatch.setattr(traces, "_write_arrow_csv", half_then_interrupt)
    out = tmp_path / "trace.csv.gz"
    code, _, err = run_cli("trace", "synth", "-o", str(out), "-n", "100", "--format-out", "csv")
    assert code == 130, err
    assert _leftovers(tmp_path) == []


# --- output files ----------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_honour_the_umask(tmp_path: Path, run_cli: Run, umask: Callable[[int], None], mask: int) -> None:
    umask(mask)
    result, trace = tmp_path / "estimate.json", tmp_path / "trace.csv"
    assert run_cli(*ESTIMATE, "-f", "json", "-o", str(result))[0] == 0
    assert run_cli("trace", "synth", "-o", str(trace), "-n", "20")[0] == 0
    for path in (result, trace):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, (path, oct(path.stat().st_mode))


def test_output_into_a_missing_directory_creates_it(tmp_path: Path, run_cli: Run) -> None:
    out = tmp_path / "a" / "b" / "c" / "estimate.json"
    code, stdout, err = run_cli(*ESTIMATE, "-f", "json", "-o", str(out))
    assert code == 0, err
    assert stdout == "" and json.loads(out.read_text())["command"] == "estimate decode"
    assert _leftovers(out.parent) == ["estimate.json"]


def test_output_replaces_an_existing_file_whole(tmp_path: Path, run_cli: Run) -> None:
    out = tmp_path / "estimate.json"
    out.write_text("x" * 100_000)
    assert run_cli(*ESTIMATE, "-f", "json", "-o", str(out))[0] == 0
    json.loads(out.read_text())


@pytest.mark.parametrize("command", ["check", "simulate"])
def test_output_onto_an_input_file_is_refused(tmp_path: Path, run_cli: Run, command: str) -> None:
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text(PROPOSAL.read_text().replace("../workloads/chatbot.yaml", str(CHATBOT)))
    before = proposal.read_bytes()
    extra = ["-n", "200"] if command == "simulate" else ["--skip", "EFF001"]
    lines = assert_input_error(run_cli(command, str(proposal), *extra, "-f", "json", "-o", str(proposal)))
    assert lines[0] == f"error: {proposal}: refusing to overwrite an input file"
    assert proposal.read_bytes() == before
    assert _leftovers(tmp_path) == ["proposal.yaml"]


def test_output_that_is_a_directory_is_one_error(tmp_path: Path, run_cli: Run) -> None:
    assert_input_error(run_cli(*ESTIMATE, "-f", "json", "-o", str(tmp_path)))


@pytest.mark.parametrize(
    "content",
    [None, b"\x00\x01\x02binary", b"\xff\xfe not utf-8", b"model: [unclosed"],
    ids=["missing", "binary", "not-utf8", "bad-yaml"],
)
def test_unusable_input_files_are_one_error_naming_the_file(tmp_path: Path, run_cli: Run, content: bytes | None) -> None:
    path = tmp_path / "workload.yaml"
    if content is not None:
        path.write_bytes(content)
    lines = assert_input_error(run_cli("size", str(path)))
    assert str(path) in lines[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_input_is_one_error(tmp_path: Path, run_cli: Run) -> None:
    path = tmp_path / "workload.yaml"
    path.write_text(CHATBOT.read_text())
    path.chmod(0)
    lines = assert_input_error(run_cli("size", str(path)))
    assert lines[0] == f"error: {path}: cannot read: Permission denied"


# --- solver time limit -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def twenty_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from size_bench import twenty_classes as make
    finally:
        sys.path.remove(str(REPO / "bench"))
    path = tmp_path_factory.mktemp("tl") / "twenty_classes.yaml"
    path.write_text(yaml.safe_dump(make(), sort_keys=False))
    return path


@pytest.mark.slow
def test_tiny_time_limit_gives_a_plan_with_its_gap_or_exit_4(twenty_classes: Path, run_cli: Run) -> None:
    code, out, err = run_cli("size", str(twenty_classes), "--time-limit-s", "0.01", "-f", "json")
    if code == 0:
        data = json.loads(out)["data"]
        assert data["optimality"] in ("optimal", "feasible")
        assert "mip_gap_frac" in data
    else:
        assert code == 4, err
        assert len(_error_lines(err)) == 1 and "time limit" in err


def _fake_solve(sol_status: int, status: int) -> Callable[..., int]:
    real = pulp.LpProblem.solve

    def solve(self: pulp.LpProblem, solver: Any = None, **kwargs: Any) -> int:
        real(self, solver, **kwargs)
        self.sol_status = sol_status  # what a time limit leaves: an incumbent or none
        return status

    return solve


def test_time_limit_without_an_incumbent_exits_4(tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulp.LpProblem, "solve", _fake_solve(pulp.LpSolutionNoSolutionFound, pulp.LpStatusNotSolved))
    out = tmp_path / "plan.json"
    code, _, err = run_cli("size", str(CHATBOT), "--time-limit-s", "1", "-f", "json", "-o", str(out))
    assert code == 4
    assert _error_lines(err) == ["error: highs found no plan within the time limit (Not Solved)"]
    assert "hint: raise --time-limit-s" in err and "Traceback" not in err
    assert not out.exists()


def test_time_limit_with_an_incumbent_reports_feasible_and_the_gap(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulp.LpProblem, "solve", _fake_solve(pulp.LpSolutionIntegerFeasible, pulp.LpStatusNotSolved))
    code, out, err = run_cli("size", str(CHATBOT), "--time-limit-s", "1", "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["optimality"] == "feasible"
    assert data["mip_gap_frac"] is None or data["mip_gap_frac"] >= 0


def test_solve_maps_no_incumbent_to_solver_error() -> None:
    from planner.optimize.solve import solve

    class Problem:
        sol_status = pulp.LpSolutionNoSolutionFound

        def solve(self, solver: Any) -> int:
            return int(pulp.LpStatusNotSolved)

    class Built:
        problem = Problem()

    with pytest.raises(SolverError, match="no plan within the time limit"):
        solve(Built(), "highs", time_limit_s=0.001)  # type: ignore[arg-type]


# --- every exit code through main() ----------------------------------------------------------


def test_exit_0(run_cli: Run) -> None:
    assert run_cli(*ESTIMATE, "-f", "json")[0] == 0


def test_exit_1_check_failed(run_cli: Run) -> None:
    code, _, _ = run_cli("check", str(FAILING_PROPOSAL), "--skip", "EFF001", "-f", "json")
    assert code == 1


@pytest.mark.parametrize(
    "args",
    [["estimate", "decode", "--tp", "x"], ["size", "/nonexistent/w.yaml"], ["no-such-command"], ["size", "--rate-rps", "nan"]],
)
def test_exit_2_usage_is_one_error_line(run_cli: Run, args: list[str]) -> None:
    assert_input_error(run_cli(*args))


def test_exit_3_infeasible(run_cli: Run) -> None:
    code, _, err = run_cli(
        "size", "-m", "llama-3.1-70b", "--rate-rps", "5", "--isl", "100000", "--osl", "100",
        "--ttft-p99-ms", "1", "--tpot-p99-ms", "50",
    )  # fmt: skip
    assert code == 3, err
    assert len(_error_lines(err)) == 1


def test_exit_70_internal_error_has_no_traceback(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from planner import api

    def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "estimate", bug)
    code, _, err = run_cli(*ESTIMATE)
    assert code == 70
    assert _error_lines(err) == [
        "error: internal error (RuntimeError: boom); please report it, and rerun with --debug for a traceback"
    ]
    assert "Traceback" not in err
    with pytest.raises(RuntimeError, match="boom"):
        main([*ESTIMATE, "--debug"])


def test_exit_130_interrupted(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from planner import api

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "estimate", interrupted)
    code, _, err = run_cli(*ESTIMATE)
    assert code == 130 and _error_lines(err) == ["error: interrupted"]


def test_every_exit_code_is_in_the_readme() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 70, 130]
    readme = (REPO / "README.md").read_text()
    for code in ExitCode:
        assert f"\n| {int(code)} |" in readme, code


# --- determinism -----------------------------------------------------------------------------


def _cli_json(args: list[str], seed: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR} | {"PYTHONHASHSEED": seed}
    proc = subprocess.run(
        [sys.executable, "-m", "planner", *args, "--format", "json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    json.loads(proc.stdout)
    return proc.stdout


@pytest.mark.slow  # two processes each
@pytest.mark.parametrize(
    "args",
    [
        ["check", str(PROPOSAL)],
        ["profile", str(TRACE), "--model", "llama-3.1-70b", "--classes", "auto"],
        ["simulate", str(PROPOSAL), "-n", "3000"],
    ],
    ids=["check", "profile", "simulate"],
)
def test_json_is_byte_identical_across_hash_seeds(args: list[str]) -> None:
    assert _cli_json(args, "0") == _cli_json(args, "1")


def test_check_is_byte_identical_across_catalog_order(tmp_path: Path, run_cli: Run) -> None:
    """A user catalog re-listing the built-in GPUs and links in reverse order changes nothing."""
    for name in ("gpus", "links"):
        raw = yaml.safe_load((REPO / "catalogs" / f"{name}.yaml").read_text())
        raw[name] = {k: raw[name][k] for k in reversed(list(raw[name]))}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    code_a, out_a, err_a = run_cli("check", str(PROPOSAL), "-f", "json")
    code_b, out_b, err_b = run_cli("check", str(PROPOSAL), "-f", "json", "--catalog-dir", str(tmp_path))
    assert code_a == code_b == 0, (err_a, err_b)
    assert out_a == out_b
