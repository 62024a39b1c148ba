"""Long computations and signals (hardening findings H5, L13, M1, M7, M8, M11, L10): a sweep stops
at once on Ctrl-C and never leaves workers behind, huge rates and headrooms end within seconds, tiny
rates give a minimal plan, ``--time-limit-s`` bounds the whole run, and SIGTERM/SIGHUP leave no
temporary file. Inputs live in tests/data/hardening_runs/ (copies of the reproducers)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO, assert_input_error, cli

DATA = Path(__file__).resolve().parent / "data" / "hardening_runs"
MIP40 = DATA / "mip40.yaml"
CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


# --------------------------------------------------------------------------------------- helpers


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead child not yet reaped counts as gone)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[1] == str(pid) and fields[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(args: list[str], cwd: Path, *, wrapper: bool = False) -> subprocess.Popen[bytes]:
    """``planner ARGS`` in a new session (its own process group, like a shell job). ``wrapper``:
    inside ``terminate_as_interrupt()``, as the CLI's main() is to install it."""
    if wrapper:
        code = (
            "import sys\nfrom planner.io.output import terminate_as_interrupt\nfrom planner.cli import main\n"
            "with terminate_as_interrupt():\n    rc = main(sys.argv[1:])\nsys.exit(rc)\n"
        )
        argv = [sys.executable, "-c", code, *args]
    else:
        argv = [sys.executable, "-m", "planner", *args]
    return subprocess.Popen(argv, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for(cond: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def sweep_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], list[int], Path]]:
    """A 2-worker sweep of the 40-class workload (about 50 s a point), its workers busy."""
    out = tmp_path / "sweep.json"
    proc = _start(["sweep", str(MIP40), "--vary", "rate_rps=1:4:4", "--jobs", "2", "-f", "json", "-o", str(out)], tmp_path)
    try:
        assert _wait_for(lambda: len(_children(proc.pid)) >= 2, 30), "the sweep's workers never started"
        workers = _children(proc.pid)
        time.sleep(2.0)  # well into sizing the first points
        yield proc, workers, out
    finally:
        for pid in [proc.pid, *_children(proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


# --------------------------------------------------------------------------------- H5, L13: sweep


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c-group", "parent-only"])
def test_sweep_sigint_stops_promptly(sweep_run: tuple[subprocess.Popen[bytes], list[int], Path], to_group: bool) -> None:
    proc, workers, out = sweep_run
    start = time.monotonic()
    if to_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=15)
    assert time.monotonic() - start < 5.0
    assert proc.returncode == 130, stderr
    assert stdout == b""
    assert stderr.decode().strip().splitlines()[-1] == "error: interrupted", stderr
    assert "Traceback" not in stderr.decode()
    assert not out.exists()
    assert _wait_for(lambda: not any(_running(w) for w in workers), 5), "a worker outlived the sweep"


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_sweep_parent_killed_leaves_no_worker(sweep_run: tuple[subprocess.Popen[bytes], list[int], Path], sig: int) -> None:
    proc, workers, out = sweep_run
    os.kill(proc.pid, sig)
    proc.communicate(timeout=15)
    assert proc.returncode != 0
    assert not out.exists()
    assert _wait_for(lambda: not any(_running(w) for w in workers), 5), "a worker outlived its parent"


@pytest.mark.parametrize("jobs", ["0", "-3", "1025", str(10**30)])
def test_sweep_absurd_jobs_refused(jobs: str) -> None:
    assert_input_error(cli("sweep", str(CHATBOT), "--vary", "rate_rps=2,8", "--jobs", jobs), "--jobs")


def test_sweep_jobs_capped_and_documented() -> None:
    import typer.main

    from planner.api.sweep import cpu_count
    from planner.cli import app

    command = typer.main.get_command(app).commands["sweep"]  # type: ignore[attr-defined]
    jobs = next(p for p in command.params if p.name == "jobs")
    assert "capped at the CPU count" in (jobs.help or "")
    assert cli("sweep", "--help")[0] == 0
    assert cpu_count() >= 1


def test_sweep_many_jobs_same_output() -> None:
    a = cli("sweep", str(CHATBOT), "--vary", "rate_rps=2,8", "--jobs", "1", "-f", "json")
    b = cli("sweep", str(CHATBOT), "--vary", "rate_rps=2,8", "--jobs", "64", "-f", "json")
    assert a[0] == b[0] == 0
    assert a[1] == b[1]


# ------------------------------------------------------------------------ M1: huge rates, headroom


@pytest.mark.parametrize(
    ("name", "needle"), [("rate_1e12.yaml", "rate_rps 1e+12"), ("headroom_0.9999999999.yaml", "headroom_frac")]
)
def test_huge_rate_or_headroom_ends_fast(name: str, needle: str) -> None:
    start = time.monotonic()
    result = cli("size", str(DATA / name))
    assert time.monotonic() - start < 20
    assert_input_error(result, "class chat", needle)


def test_huge_rate_flag_and_sweep_end_fast() -> None:
    start = time.monotonic()
    code, out, err = cli("sweep", str(DATA / "rate_1e6.yaml"), "--vary", "rate_rps=1e12,1e300", "--jobs", "1", "-f", "json")
    assert code == 0, err
    points = json.loads(out)["data"]["points"]
    assert [p["status"] for p in points] == ["error", "error"]
    assert "rate_rps" in points[0]["message"]
    assert time.monotonic() - start < 20


def test_rate_1e6_sizes_within_seconds() -> None:
    start = time.monotonic()
    code, out, err = cli("size", str(DATA / "rate_1e6.yaml"), "-f", "json")
    assert code == 0, err
    assert json.loads(out)["data"]["num_gpus"] > 1000
    # A guard against the hang of finding M1 (larger rates gave no result in 60-120 s), not a speed figure: the
    # bounded erlang_c itself is tested in test_erlang_c_bounded_and_consistent, speed lives in bench/. 20 s failed
    # at 27 s on a slow 2-core machine (2026-12-02, whole suite 18 min there against 8 min in CI).
    assert time.monotonic() - start < 60


def test_erlang_c_bounded_and_consistent() -> None:
    from planner.perf.queueing import ERLANG_RECURSION_MAX, _erlang_b, erlang_c, max_rate_for_quantile, wait_tail

    for servers in (ERLANG_RECURSION_MAX + 1, 5000, 40000):
        for rho in (0.5, 0.9, 0.99, 0.999, 0.99999):
            a = servers * rho
            b = _erlang_b(servers, a)
            exact = b / (1.0 - rho * (1.0 - b))
            got = erlang_c(servers, a)
            assert got == pytest.approx(exact, rel=1e-9, abs=1e-300), (servers, rho)
    start = time.monotonic()
    for servers in (10**6, 10**12, 2**63, int(1e300)):
        for rho in (0.5, 1 - 1e-6, 1 - 1e-10):
            c = erlang_c(servers, servers * rho)
            assert 0.0 <= c <= 1.0 and math.isfinite(c)
        assert 0.0 <= wait_tail(servers * 0.99, 1.0, 1.0, 1.0, servers)[0] <= 1.0
    assert max_rate_for_quantile(0.1, 0.5, 1.0, __import__("numpy").array([0.1, 0.2]), 0.99, 1.0, 10**9) > 0
    assert time.monotonic() - start < 2.0


def test_erlang_c_ordinary_unchanged() -> None:
    """Up to ERLANG_RECURSION_MAX servers the recursion is the one it always was (same floats)."""
    from planner.perf.queueing import _erlang_b, erlang_c, mean_wait_s, wait_tail

    for servers, a in ((1, 0.5), (4, 3.2), (64, 60.0), (2048, 2000.0)):
        b = _erlang_b(servers, a)
        assert erlang_c(servers, a) == b / (1.0 - a / servers * (1.0 - b))
        c, theta = wait_tail(a / 2.0, 2.0, 0.3, 1.5, servers)
        assert c == erlang_c(servers, a)
        assert theta == mean_wait_s(a / 2.0, 2.0, 0.3, 1.5, servers) / c


# --------------------------------------------------------------------------------- M7: tiny rate


@pytest.mark.parametrize("rate", ["1.0e-5", "1.0e-9", "1.0e-300"])
def test_tiny_rate_gives_minimal_plan(tmp_path: Path, rate: str) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text((DATA / "rate_1e-5.yaml").read_text().replace("rate_rps: 1.0e-5", f"rate_rps: {rate}"))
    code, out, err = cli("size", str(wl), "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert sorted((p["role"], p["replicas"]) for p in data["pools"]) == [("decode", 1), ("prefill", 1)]


# ------------------------------------------------------------------------------- M11: time limit


@pytest.mark.slow
def test_time_limit_bounds_whole_run() -> None:
    limit = 8.0
    start = time.monotonic()
    code, out, err = cli("size", str(MIP40), "--time-limit-s", str(limit), "-f", "json")
    elapsed = time.monotonic() - start
    # One solve may overrun its share by the solver interface's own overhead (a few seconds).
    assert elapsed < limit + 6.0, elapsed
    assert code in (0, 4), err
    if code == 4:
        assert "time limit" in err and "Traceback" not in err
    else:
        data = json.loads(out)
        gap = data["data"]["mip_gap_frac"]
        if data["data"]["optimality"] == "feasible" and gap is not None:
            assert any("optimality gap of" in w for w in data["warnings"])


def test_feasible_plan_warning_states_gap() -> None:
    from planner.api.inputs import load_workload_spec, resolve_workload, workload_catalog
    from planner.optimize import sizing

    spec = load_workload_spec(CHATBOT)
    cat = workload_catalog(spec, CHATBOT, (), None)
    wl = resolve_workload(spec, cat, str(CHATBOT))
    result = sizing.size(wl, cat)
    plan = replace(result.plan, optimality="feasible", gap_frac=0.994)
    warnings = sizing._warnings(wl, cat, plan, result.savings_frac, sizing._Clock(None))
    assert any("optimality gap of 99.4%" in w for w in warnings), warnings
    assert not any("gap unknown" in w for w in warnings)


def test_time_limit_tiny_exit_4() -> None:
    code, out, err = cli("size", str(CHATBOT), "--time-limit-s", "1e-300")
    assert code == 4, err
    assert out == ""
    assert err.startswith("error: ") and "time limit" in err


# ------------------------------------------------------------------------ M8, L10: atomic writes


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_signal_during_atomic_write_leaves_no_tmp(tmp_path: Path, sig: int) -> None:
    args = ["trace", "synth", "--format-out", "jsonl", "-n", "3000000", "--rate-rps", "100", "--seed", "1", "-o", "big.jsonl"]
    proc = _start(args, tmp_path, wrapper=True)
    try:
        assert _wait_for(lambda: any(tmp_path.glob(".big.jsonl.*.tmp")), 60), "no temporary file appeared"
        time.sleep(0.3)
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode in (130, 128 + sig), stderr
    assert "Traceback" not in stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_terminate_as_interrupt_restores_and_respects_ignored() -> None:
    from planner.io.output import Terminated, terminate_as_interrupt

    before_term = signal.getsignal(signal.SIGTERM)
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with terminate_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN  # nohup stays nohup
            with pytest.raises(Terminated) as info:
                signal.raise_signal(signal.SIGTERM)
            assert isinstance(info.value, KeyboardInterrupt)
            assert info.value.exit_code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) == before_term
    finally:
        signal.signal(signal.SIGHUP, old_hup)


def test_atomic_write_cleans_tmp_on_terminated(tmp_path: Path) -> None:
    from planner.io.output import Terminated, atomic_binary

    target = tmp_path / "out.txt"
    with pytest.raises(Terminated), atomic_binary(target) as fh:
        fh.write(b"partial")
        raise Terminated(signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_atomic_write_keeps_existing_mode(tmp_path: Path, mode: int) -> None:
    from planner.io.output import write_text_atomic

    target = tmp_path / "s.json"
    target.write_text("s\n")
    target.chmod(mode)
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o7777 == mode
    fresh = tmp_path / "fresh.json"
    write_text_atomic(fresh, "x\n")
    umask = os.umask(0o022)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o7777 == 0o666 & ~umask
