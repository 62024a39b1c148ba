"""Hardening, round two (issue 17): the high-severity findings, each as a small inline case.

H1 the simulator passes 16,384 s of simulated time; H2 recursive YAML aliases are one error;
H3 no output replaces any file the command read; H4 outputs never replace device nodes or FIFOs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import Run, assert_input_error

from planner.sim import engine as sim_engine

WORKLOAD = """\
model: llama-3.1-8b
precision: bf16
classes:
  - name: chat
    rate_rps: {rate}
    input_tokens: {{mean: 1000, p50: 800, p90: 2000, p99: 3000}}
    output_tokens: {{mean: 200, p50: 150, p90: 400, p99: 600}}
    slo: {{ttft_p99_ms: 1000, tpot_p99_ms: 60}}
hardware:
  prefill_gpus: [h100-sxm]
  decode_gpus: [h100-sxm]
  links: [ib-ndr-400]
"""

PROPOSAL = """\
workload: {workload}
pools:
  - {{role: prefill, gpu: h100-sxm, tp: 1, replicas: 2, link: ib-ndr-400}}
  - {{role: decode, gpu: h100-sxm, tp: 1, replicas: 2, max_batch: 64}}
"""


def _refused(result: tuple[int, str, str], line: str, json_error: bool = False) -> None:
    """Exit 2, nothing on stdout (with ``json_error``, only the ``-f json`` error envelope), no traceback,
    and ``line`` the one ``error:`` line (warnings of the computation before it may come first)."""
    code, out, err = result
    assert code == 2, (code, err)
    if json_error:
        import json

        doc = json.loads(out)
        assert (doc["status"], doc["error"]["message"], doc["error"]["exit_code"]) == ("error", line[len("error: ") :], 2)
    else:
        assert out == "", out
    assert "Traceback" not in err, err
    assert [x for x in err.splitlines() if x.startswith("error:")] == [line], err


def _proposal(directory: Path, rate: float, workload_name: str = "wl.yaml") -> Path:
    (directory / workload_name).write_text(WORKLOAD.format(rate=rate))
    proposal = directory / "proposal.yaml"
    proposal.write_text(PROPOSAL.format(workload=workload_name))
    return proposal


# --- H1: the simulator's clock passes 16,384 s ---------------------------------------------------


def test_simulation_passes_the_float_spacing_of_a_late_clock(tmp_path: Path, run_cli: Run) -> None:
    """50 requests at 0.001 req/s run to about 50,000 s: past 16,384 s a KV transfer's remainder
    needed a step below the clock's float spacing, and the run looped forever."""
    proposal = _proposal(tmp_path, 0.001)
    code, out, err = run_cli("simulate", str(proposal), "-n", "50", "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["simulation"]["simulated_s"] > 16_384
    assert data["stop_reason"] is None
    assert data["completed"] == data["num_requests"]


def _stuck_ps_schedule(self: sim_engine._Sim, p: int, r: int) -> None:
    """The KV scheduling before the fix: a step below the clock's spacing lands on ``now`` again."""
    self.ps_ver[p][r] += 1
    jobs = self.ps_jobs[p][r]
    if jobs:
        m = min(jobs.values())
        t = self.now + max(m, 0.0) * len(jobs) / self.pools[p].link_bytes_per_s
        self.push(t, sim_engine._KV, p, r * 1_000_003 + self.ps_ver[p][r] % 1_000_003)


def test_a_simulator_loop_without_progress_is_an_internal_error(
    tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should an event loop stop moving the clock, the run ends as a bug (exit 70), never spins."""
    monkeypatch.setattr(sim_engine._Sim, "ps_schedule", _stuck_ps_schedule)
    proposal = _proposal(tmp_path, 0.001)
    code, _, err = run_cli("simulate", str(proposal), "-n", "50", "-f", "json")
    assert code == 70
    assert "simulator made no progress" in err


# --- H2: recursive aliases ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "&a {x: *a}\n", "a: &a {b: [1, {c: *a}]}\n"], ids=["list", "map", "deep"])
def test_a_recursive_alias_is_one_error_naming_the_file(tmp_path: Path, run_cli: Run, text: str) -> None:
    path = tmp_path / "rec.yaml"
    path.write_text(text)
    lines = assert_input_error(run_cli("size", str(path)))
    assert lines[0] == f"error: {path}:1: recursive alias (an anchor used inside itself)"


def test_shared_aliases_still_load() -> None:
    from planner.io.yamlio import loads

    doc = loads("a: &x [1, 2]\nb: [*x, *x, {c: *x}]\n", "t.yaml")
    assert doc == {"a": [1, 2], "b": [[1, 2], [1, 2], {"c": [1, 2]}]}


# --- H3: no output replaces a file the command read ----------------------------------------------


@pytest.mark.parametrize("command", ["check-o", "check-junit", "simulate-o"])
def test_output_onto_the_proposals_workload_is_refused(tmp_path: Path, run_cli: Run, command: str) -> None:
    proposal = _proposal(tmp_path, 5)
    workload = tmp_path / "wl.yaml"
    before = workload.read_bytes()
    args = {
        "check-o": ["check", str(proposal), "-f", "json", "-o", str(workload)],
        "check-junit": ["check", str(proposal), "-f", "json", "--junit", str(workload)],
        "simulate-o": ["simulate", str(proposal), "-n", "200", "-f", "json", "-o", str(workload)],
    }[command]
    # -f json without -o: the refusal's error envelope is on stdout
    _refused(run_cli(*args), f"error: {workload}: refusing to overwrite an input file", json_error=command == "check-junit")
    assert workload.read_bytes() == before


def test_output_onto_a_calibration_overlay_is_refused(tmp_path: Path, run_cli: Run) -> None:
    cal = tmp_path / "cal"
    cal.mkdir()
    overlay = cal / "efficiency.yaml"
    overlay.write_text("schema_version: 1\nefficiency: {}\n")
    workload = tmp_path / "w.yaml"
    workload.write_text(WORKLOAD.format(rate=5) + "calibration: cal\n")
    before = overlay.read_bytes()
    _refused(
        run_cli("size", str(workload), "-f", "json", "-o", str(overlay)), f"error: {overlay}: refusing to overwrite an input file"
    )
    assert overlay.read_bytes() == before


def test_output_onto_a_catalog_dir_file_is_refused(tmp_path: Path, run_cli: Run) -> None:
    overlays = tmp_path / "ov"
    overlays.mkdir()
    links = overlays / "links.yaml"
    links.write_text("schema_version: 1\nlinks: {}\n")
    workload = tmp_path / "w.yaml"
    workload.write_text(WORKLOAD.format(rate=5))
    before = links.read_bytes()
    _refused(
        run_cli("size", str(workload), "--catalog-dir", str(overlays), "-f", "json", "-o", str(links)),
        f"error: {links}: refusing to overwrite an input file",
    )
    assert links.read_bytes() == before


# --- H4: special files are refused, never replaced -----------------------------------------------


def _special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    else:  # a private copy of /dev/null's node, never the real one
        if os.geteuid() != 0:
            pytest.skip("mknod needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))


@pytest.mark.parametrize("link", [False, True], ids=["direct", "symlink"])
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_output_onto_a_special_file_is_refused(tmp_path: Path, run_cli: Run, kind: str, link: bool) -> None:
    special = tmp_path / "special"
    _special(kind, special)
    target = special
    if link:
        target = tmp_path / "link"
        target.symlink_to(special)
    workload = tmp_path / "w.yaml"
    workload.write_text(WORKLOAD.format(rate=5))
    _refused(
        run_cli("size", str(workload), "-f", "json", "-o", str(target)),
        f"error: {target}: not a regular file (a device, FIFO or socket): refusing to replace it",
    )
    mode = special.lstat().st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISCHR(mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["special", "w.yaml", *(["link"] if link else [])])
