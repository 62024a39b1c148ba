"""The execution layer (planner.api.executor, issue 20 items 3-4): rows in point order whatever the backend and
the number of workers, error rows, run directories (resume computes only the missing points and gives the same
bytes; another study's directory is refused), Ctrl-C keeps what finished, Ray gives the local run's rows."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, Run, cli

from planner.api.executor import check_execution, execute, fingerprint
from planner.api.sweep import run_points
from planner.domain import Catalog
from planner.errors import InputError, StudyInterrupted

CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install -e '.[test,ray]')")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# ------------------------------------------------------------------------- toy points (module level: picklable)

_STATE: dict[str, Any] = {}
CALLS: list[int] = []  # points computed in this process (serial runs)


def _init_toy(offset: int) -> None:
    _STATE["offset"] = offset


def _toy(x: int) -> dict[str, Any]:
    time.sleep(0.002 * ((x * 7) % 5))  # points finish out of order on several workers
    CALLS.append(x)
    return {"x": x, "y": x * x + _STATE["offset"], "pair": (x, -x), "half": x / 2}


def _toy_interrupted_at_5(x: int) -> dict[str, Any]:
    if x == 5:
        raise KeyboardInterrupt
    return _toy(x)


def _toy_fails_at_3(x: int) -> dict[str, Any]:
    if x == 3:
        raise ValueError("point 3 is broken")
    return _toy(x)


def _expected(points: list[int], offset: int = 10) -> list[dict[str, Any]]:
    return [{"x": x, "y": x * x + offset, "pair": [x, -x], "half": x / 2} for x in points]


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()
    _STATE.clear()


# ----------------------------------------------------------------------------------------- local


@pytest.mark.parametrize("jobs", [1, 2])
def test_local_rows_in_point_order_through_json(jobs: int) -> None:
    points = list(range(12))
    rows = execute(points, _toy, init=_init_toy, init_args=(10,), jobs=jobs)
    assert rows == _expected(points)  # in order, init ran in each worker, tuples came back as JSON lists
    assert json.dumps(rows) == json.dumps(execute(points, _toy, init=_init_toy, init_args=(10,), jobs=1))


def test_a_bug_in_a_point_is_raised_not_hidden() -> None:
    with pytest.raises(ValueError, match="point 3 is broken"):
        execute(list(range(6)), _toy_fails_at_3, init=_init_toy, init_args=(0,), jobs=2)


def test_points_with_one_key_are_computed_once() -> None:
    rows = execute([1, 2, 1, 3, 2], _toy, init=_init_toy, init_args=(0,), jobs=1, keys=["a", "b", "a", "c", "b"])
    assert rows == _expected([1, 2, 1, 3, 2], 0)
    assert sorted(CALLS) == [1, 2, 3]
    assert rows[0] is not rows[2]  # each point has its own row


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "dask"}, "--backend dask: use one of local, ray"),
        ({"jobs": 0}, "--jobs 0"),
        ({"jobs": 1025}, "--jobs 1025"),
        ({"address": "auto"}, "--address auto: only with --backend ray"),
        ({"backend": "ray", "address": " "}, "--address: empty"),
    ],
)
def test_bad_execution_options_are_input_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match="^" + message.replace("(", r"\(")):
        check_execution(**kwargs)
    with pytest.raises(InputError):
        execute([1], _toy, **kwargs)


def test_fingerprint_tells_values_apart_and_is_the_same_in_another_process(catalog: Catalog) -> None:
    assert fingerprint((1, 2.0)) != fingerprint((1, 2))
    assert fingerprint(0.0) != fingerprint(-0.0)
    assert fingerprint({"a": {1, 2}}) == fingerprint({"a": {2, 1}})
    assert fingerprint([1]) == fingerprint((1,))
    code = (
        "from planner.io.catalog import load_catalog\nfrom planner.api.executor import fingerprint\n"
        "print(fingerprint(load_catalog()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    env.pop("PLANNER_CATALOG_DIR", None)
    env.pop("PLANNER_ENGINE", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60)
    assert out.stdout.strip() == fingerprint(catalog)


# ---------------------------------------------------------------------------------- sweep points


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CHATBOT.read_text())
    return doc


GRID = [
    [("rate_rps", 5.0)],
    [("ttft_x", -1.0)],  # a negative target: the document does not resolve (an error row)
    [("ttft_p99_ms", 1.0)],  # 1 ms TTFT: infeasible
    [("rate_rps", 30.0)],
]


def test_error_and_infeasible_rows_in_order_on_every_worker_count(catalog: Catalog) -> None:
    serial = run_points(_doc(), catalog, GRID, jobs=1)
    assert [r["status"] for r in serial] == ["ok", "error", "infeasible", "ok"]
    assert [r["index"] for r in serial] == [0, 1, 2, 3]
    assert "ttft" in serial[1]["message"].lower()
    assert json.dumps(run_points(_doc(), catalog, GRID, jobs=2)) == json.dumps(serial)


def test_repeated_point_keeps_its_own_index(catalog: Catalog, tmp_path: Path) -> None:
    grid = [[("rate_rps", 5.0)], [("rate_rps", 8.0)], [("rate_rps", 5.0)]]
    rows = run_points(_doc(), catalog, grid, jobs=1, run_dir=tmp_path / "run")
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert {k: v for k, v in rows[0].items() if k != "index"} == {k: v for k, v in rows[2].items() if k != "index"}
    assert len(list((tmp_path / "run" / "points").glob("*.json"))) == 2
    assert json.dumps(rows) == json.dumps(run_points(_doc(), catalog, grid, jobs=1))


def test_the_one_axis_library_sweep_passes_its_execution_options_on(catalog: Catalog, tmp_path: Path) -> None:
    """planner.api.sweep.sweep (the one-axis library call) runs its points where its options say: with a run
    directory the points are kept there (it once dropped every execution option on the way to sweep_grid)."""
    from planner.api.sweep import Vary, sweep

    data = sweep(_doc(), catalog, Vary("rate_rps", (5.0, 8.0)), jobs=1, run_dir=tmp_path / "run")
    assert [p["status"] for p in data["points"]] == ["ok", "ok"]
    assert (tmp_path / "run" / "manifest.json").is_file()
    assert len(list((tmp_path / "run" / "points").glob("*.json"))) == 2


# ----------------------------------------------------------------------------------- run directory

STUDY = {"study": "toy", "offset": 10}


def test_run_dir_resume_computes_only_the_missing_points(tmp_path: Path) -> None:
    points = list(range(10))
    run = tmp_path / "run"
    seen: list[tuple[int, int]] = []
    with pytest.raises(StudyInterrupted) as info:
        execute(points, _toy_interrupted_at_5, init=_init_toy, init_args=(10,), jobs=1, run_dir=run, study=STUDY,
                progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert info.value.exit_code == 130
    assert info.value.message == f"interrupted: 5 of 10 points finished, kept in {run}"
    assert "compute only the 5 missing points" in (info.value.hint or "")
    assert seen == [(i, 10) for i in range(6)]
    assert len(list((run / "points").glob("*.json"))) == 5
    CALLS.clear()
    seen.clear()
    rows = execute(points, _toy, init=_init_toy, init_args=(10,), jobs=1, run_dir=run, study=STUDY,
                   progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert CALLS == [5, 6, 7, 8, 9]  # the finished ones were read back, not computed
    assert seen[0] == (5, 10) and seen[-1] == (10, 10)
    assert json.dumps(rows) == json.dumps(_expected(points))
    CALLS.clear()
    assert execute(points, _toy, init=_init_toy, init_args=(10,), jobs=2, run_dir=run, study=STUDY) == rows
    assert CALLS == []


def test_run_dir_point_file_not_whole_is_computed_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    rows = execute([1, 2, 3], _toy, init=_init_toy, init_args=(10,), jobs=1, run_dir=run, study=STUDY)
    files = sorted((run / "points").glob("*.json"))
    files[0].write_text('{"key": "x", "row"')  # cut short (a disk that filled up, an editor)
    (run / "points" / ".stale.999999999.tmp").write_text("{")  # a killed run's temporary file
    CALLS.clear()
    again = execute([1, 2, 3], _toy, init=_init_toy, init_args=(10,), jobs=1, run_dir=run, study=STUDY)
    assert again == rows and len(CALLS) == 1
    assert not (run / "points" / ".stale.999999999.tmp").exists()


def test_run_dir_of_another_study_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    execute([1, 2], _toy, init=_init_toy, init_args=(10,), jobs=1, run_dir=run, study=STUDY)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["format"] == "planner-run-dir" and manifest["points"] == 2 and manifest["study"] == STUDY
    with pytest.raises(InputError, match=r"holds another study .*they differ in: offset\)$"):
        execute([1, 2], _toy, init=_init_toy, init_args=(11,), jobs=1, run_dir=run, study={**STUDY, "offset": 11})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty and not a planner run directory"):
        execute([1], _toy, init=_init_toy, init_args=(10,), run_dir=tmp_path / "full", study=STUDY)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        execute([1], _toy, init=_init_toy, init_args=(10,), run_dir=tmp_path / "file", study=STUDY)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("[1]")
    with pytest.raises(InputError, match="not a planner run-directory manifest"):
        execute([1], _toy, init=_init_toy, init_args=(10,), run_dir=tmp_path / "bad", study=STUDY)
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def _sweep_args(*extra: str) -> list[str]:
    return ["sweep", str(CHATBOT), "--vary", "rate_rps=4:24:6", "-f", "json", *extra]


def test_cli_run_dir_gives_the_same_bytes_and_refuses_another_study(run_cli: Run, tmp_path: Path) -> None:
    plain = run_cli(*_sweep_args("-j", "1"))
    first = run_cli(*_sweep_args("-j", "2", "--run-dir", str(tmp_path / "run")))
    again = run_cli(*_sweep_args("-j", "1", "--run-dir", str(tmp_path / "run")))
    assert plain[0] == first[0] == again[0] == 0
    assert plain[1] == first[1] == again[1]
    assert plain[2] == first[2] == again[2]  # no progress noise when stderr is not a terminal
    code, out, err = run_cli("sweep", str(CHATBOT), "--vary", "rate_rps=4:24:7", "--run-dir", str(tmp_path / "run"))
    assert code == 2 and out == ""
    assert err.splitlines()[0].startswith(f"error: --run-dir {tmp_path / 'run'} holds another study")
    assert "they differ in: grid)" in err and "Traceback" not in err


# ------------------------------------------------------------------------- Ctrl-C and kill -9, resumed


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


LONG = ["sweep", str(CHATBOT), "--vary", "rate_rps=2:40:60", "-f", "json"]


@pytest.fixture(scope="module")
def uninterrupted() -> str:
    code, out, err = cli(*LONG, "-j", "2")
    assert code == 0, err
    return out


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                text = (entry / "stat").read_text()
                fields = text[text.rindex(")") + 2 :].split()
                if fields[1] == str(pid) and fields[0] not in ("Z", "X"):
                    out.append(int(entry.name))
    return out


@contextlib.contextmanager
def _started(args: list[str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", "planner", *args], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _wait_for_points(run: Path, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(list((run / "points").glob("*.json"))) if (run / "points").is_dir() else 0
        if n >= at_least:
            return n
        time.sleep(0.01)
    raise AssertionError(f"fewer than {at_least} points finished in {timeout} s")


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", pytest.param("ray", marks=needs_ray)])
def test_sigint_keeps_finished_points_and_resume_gives_the_same_bytes(backend: str, uninterrupted: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = tmp_path / "out.json"
    with _started([*LONG, "-j", "2", "--backend", backend, "--run-dir", str(run), "-o", str(out)], tmp_path) as proc:
        _wait_for_points(run, 3, timeout=180)
        workers = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at a terminal: the whole process group
        stdout, stderr = proc.communicate(timeout=60)
    lines = stderr.decode().strip().splitlines()
    assert proc.returncode == 130, stderr
    assert stdout == b"" and not out.exists() and "Traceback" not in stderr.decode()
    kept = len(list((run / "points").glob("*.json")))
    assert 3 <= kept < 60
    assert lines[-2] == f"error: interrupted: {kept} of 60 points finished, kept in {run}", stderr
    assert lines[-1] == f"hint: run the same command again (the same --run-dir) to compute only the {60 - kept} missing points"
    deadline = time.monotonic() + 10
    while any(_running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(w) for w in workers), "a worker outlived the study"
    code, resumed, err = cli(*LONG, "-j", "2", "--run-dir", str(run))
    assert code == 0, err
    assert resumed == uninterrupted


def _running(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split()[0] not in ("Z", "X")


@linux_only
@pytest.mark.slow
def test_kill_9_loses_only_the_points_running_and_resume_gives_the_same_bytes(uninterrupted: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with _started([*LONG, "-j", "2", "--run-dir", str(run)], tmp_path) as proc:
        _wait_for_points(run, 5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    kept = [p for p in (run / "points").iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
    assert 5 <= len(kept) < 60
    for p in kept:  # every file there is whole
        assert json.loads(p.read_text())["key"] == p.stem
    code, resumed, err = cli(*LONG, "-j", "1", "--run-dir", str(run))
    assert code == 0, err
    assert resumed == uninterrupted


# ------------------------------------------------------------------------------------------------ Ray


def test_ray_missing_is_one_error_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out, err = cli("sweep", str(CHATBOT), "--vary", "rate_rps=4,8", "--backend", "ray")
    assert code == 2 and out == ""
    assert err == "error: --backend ray: Ray is not installed; install the extra: pip install 'planner-disagg[ray]'\n"


@needs_ray
@pytest.mark.slow
def test_ray_rows_equal_the_local_ones(catalog: Catalog, tmp_path: Path) -> None:
    """CI's two-CPU local Ray instance: the same rows as local processes (error rows too) and, through the CLI,
    the same JSON bytes; a run directory filled on Ray resumes locally."""
    import ray

    grid = [*GRID, *([("rate_rps", float(r))] for r in (2, 9, 17))]
    local = run_points(_doc(), catalog, grid, jobs=2)
    start = time.perf_counter()
    tests = str(Path(__file__).resolve().parent)  # the toy points' module, for the Ray workers to import
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([tests, str(REPO), os.environ.get("PYTHONPATH", "")])}},
    )
    started_s = time.perf_counter() - start
    try:
        assert json.dumps(run_points(_doc(), catalog, grid, backend="ray", jobs=2)) == json.dumps(local)
        toy = execute(list(range(8)), _toy, init=_init_toy, init_args=(10,), backend="ray", jobs=2)
        assert toy == _expected(list(range(8)))
        with pytest.raises(ValueError, match="point 3 is broken"):
            execute(list(range(6)), _toy_fails_at_3, init=_init_toy, init_args=(0,), backend="ray")
        assert ray.is_initialized()  # a Ray this process started itself is left running
    finally:
        ray.shutdown()
    print(f"ray start-up {started_s:.2f} s")
    plain = cli(*_sweep_args("-j", "2"))
    on_ray = cli(*_sweep_args("-j", "2", "--backend", "ray", "--run-dir", str(tmp_path / "run")))
    assert on_ray[0] == 0, on_ray[2]
    assert on_ray[1] == plain[1]
    assert cli(*_sweep_args("--run-dir", str(tmp_path / "run")))[1] == plain[1]


def test_ci_installs_the_ray_extra() -> None:
    """The Ray comparison above runs in CI only if CI installs Ray: .ci/run (the README's test command) asks for
    the extra, and pyproject defines it."""
    assert "pip install -e '.[test,ray]'" in (REPO / ".ci" / "run").read_text()
    assert 'ray = ["ray>=2.9"]' in (REPO / "pyproject.toml").read_text()
