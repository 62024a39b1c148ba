"""What a user at a terminal gets (issue "hardening round two", item 5 and parts of 3): the ``-f json`` error
envelope, warnings on stderr, ``--version``, terminal width and colour, ``-f`` on every command that prints,
CSV cells a spreadsheet cannot run (M9), the HTML's embedded JSON (M10), two outputs naming one file (L9), an
ASCII-only stdout (L11), ``size --verify --strict`` and the distribution check."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, Run, assert_input_error

from planner.report.envelope import to_json

CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"
PROPOSAL = REPO / "examples" / "proposals" / "chatbot.yaml"
SWEEP_RESULT = REPO / "tests" / "data" / "golden" / "sweep_chatbot_rate.json"
ESC = "\x1b["


class FakeTTY(io.StringIO):
    """A stdout or stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _run_with(stdout: io.StringIO, stderr: io.StringIO, *args: str) -> int:
    from planner.cli import main

    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        return main(list(args))


# ------------------------------------------------------------------------ 1. -f json error envelope


def test_json_error_prints_an_envelope_on_stdout_and_the_error_line_on_stderr(run_cli: Run) -> None:
    code, out, err = run_cli("size", str(CHATBOT), "--isl", "5", "-f", "json")
    assert code == 2
    doc = json.loads(out)
    assert out == to_json(doc)  # keys sorted, as every envelope
    assert doc["command"] == "size" and doc["status"] == "error" and doc["schema_version"] == 1
    assert doc["error"]["exit_code"] == 2
    assert "not both" in doc["error"]["message"]
    assert err.splitlines()[0] == f"error: {doc['error']['message']}"
    # a usage error too, named by its sub-command
    code, out, err = run_cli("estimate", "decode", "--no-such-flag", "-f", "json")
    assert code == 2 and json.loads(out)["command"] == "estimate decode" and err.startswith("error: ")
    # other formats keep stdout empty
    assert_input_error(run_cli("size", str(CHATBOT), "--isl", "5", "-f", "yaml"))
    # with -o the result goes to the file: stdout stays empty, the file is not written
    code, out, _ = run_cli("size", str(CHATBOT), "--isl", "5", "-f", "json", "-o", "/nonexistent-dir/x.json")
    assert (code, out) == (2, "")


# ------------------------------------------------------------------------- 2. warnings on stderr


def test_json_warnings_are_also_on_stderr_once_each(run_cli: Run) -> None:
    code, out, err = run_cli("size", str(CHATBOT), "-f", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["warnings"], "chatbot.yaml has warnings (co-located cheaper, power factors transferred)"
    assert err == "".join(f"warning: {w}\n" for w in doc["warnings"])
    assert "warning:" not in out.replace('"warnings"', "")  # never a warning line on stdout
    code, _, table_err = run_cli("size", str(CHATBOT))
    assert code == 0 and table_err == err  # the table prints each one once too


# -------------------------------------------------------------------------------------- 3. --version


def test_version(run_cli: Run) -> None:
    import planner

    assert run_cli("--version") == (0, f"planner {planner.__version__}\n", "")


# -------------------------------------------------------------------------- 4. width and colour


def _max_width(text: str) -> int:
    return max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in text.splitlines())


def test_tables_take_the_terminal_width_on_a_tty_and_110_columns_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    monkeypatch.setenv("NO_COLOR", "1")
    tty = FakeTTY()
    assert _run_with(tty, io.StringIO(), "catalog", "list", "gpus") == 0
    assert _max_width(tty.getvalue()) <= 72
    piped = io.StringIO()
    assert _run_with(piped, io.StringIO(), "catalog", "list", "gpus") == 0
    assert _max_width(piped.getvalue()) == 110  # as before: the bytes do not depend on COLUMNS
    monkeypatch.setenv("COLUMNS", "20")  # at least 60
    narrow = FakeTTY()
    assert _run_with(narrow, io.StringIO(), "catalog", "list", "gpus") == 0
    assert 60 >= _max_width(narrow.getvalue()) > 20


def test_colour_only_on_a_tty_and_never_under_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    tty, tty_err = FakeTTY(), FakeTTY()
    assert _run_with(tty, tty_err, "catalog", "list", "gpus") == 0
    assert ESC in tty.getvalue()
    piped = io.StringIO()
    assert _run_with(piped, io.StringIO(), "catalog", "list", "gpus") == 0
    assert ESC not in piped.getvalue()
    err = FakeTTY()
    assert _run_with(io.StringIO(), err, "size", str(CHATBOT), "--isl", "5") == 2
    assert err.getvalue().startswith("\x1b[31merror:")  # errors in red on a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    tty, err = FakeTTY(), FakeTTY()
    assert _run_with(tty, io.StringIO(), "catalog", "list", "gpus") == 0
    assert _run_with(io.StringIO(), err, "size", str(CHATBOT), "--isl", "5") == 2
    assert ESC not in tty.getvalue() and ESC not in err.getvalue()
    assert err.getvalue().startswith("error: ")


# ------------------------------------------------------------------------------ 5. -f everywhere


def test_format_option_on_schema_trace_synth_and_report(tmp_path: Path, run_cli: Run) -> None:
    code, as_json, _ = run_cli("schema", "links")
    assert code == 0 and run_cli("schema", "links", "-f", "json")[1] == as_json
    code, as_yaml, _ = run_cli("schema", "links", "-f", "yaml")
    assert code == 0 and yaml.safe_load(as_yaml) == json.loads(as_json)

    trace = tmp_path / "t.csv"
    assert run_cli("trace", "synth", "-o", str(trace), "-n", "40", "--format-out", "csv") == (0, "", "")  # quiet as before
    code, out, _ = run_cli("trace", "synth", "-o", str(trace), "-n", "40", "--format-out", "csv", "-f", "json")
    doc = json.loads(out)
    assert code == 0 and doc["command"] == "trace synth" and doc["data"]["requests"] == 40
    code, out, _ = run_cli("trace", "synth", "-o", str(trace), "-n", "40", "-f", "table")
    assert code == 0 and "requests" in out

    html = tmp_path / "r.html"
    assert run_cli("report", str(SWEEP_RESULT), "--html", str(html)) == (0, "", "")
    code, out, _ = run_cli("report", str(SWEEP_RESULT), "--html", str(html), "-f", "json")
    doc = json.loads(out)
    assert code == 0 and doc["command"] == "report" and doc["data"]["bytes"] == html.stat().st_size
    assert doc["data"]["result_command"] == "sweep"


# --------------------------------------------------------------------------- 6. CSV (M9, cents)


def test_csv_cells_cannot_be_formulas_and_money_is_in_cents() -> None:
    from planner.cli._common import to_csv

    text = to_csv(
        [
            {
                "description": '=HYPERLINK("http://evil.example","click")',
                "id": "=1+cmd|' /C calc'!A0",
                "plus": "+1+2 x",
                "at": "@SUM(A1)",
                "tab": "\tx",
                "cr": "\rx",
                "neg_text": "-0.05",
                "neg_number": -0.05,
                "dash": "-",
                "unit_usd": 251616.40000000002,
                "extended_usd": 3,
                "usd_per_mtok": 0.1234,
                "quantity": 20,
            }
        ]
    )
    row = next(csv.DictReader(io.StringIO(text, newline="")))
    assert row["description"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["id"] == "'=1+cmd|' /C calc'!A0"
    assert (row["plus"], row["at"], row["tab"], row["cr"]) == ("'+1+2 x", "'@SUM(A1)", "'\tx", "'\rx")
    assert (row["neg_text"], row["neg_number"], row["dash"]) == ("-0.05", "-0.05", "-")  # numbers stay numbers
    assert (row["unit_usd"], row["extended_usd"]) == ("251616.40", "3.00")
    assert (row["usd_per_mtok"], row["quantity"]) == ("0.1234", "20")  # not *_usd*: unrounded


def test_size_csv_money_in_cents(run_cli: Run) -> None:
    code, out, _ = run_cli("size", str(CHATBOT), "-f", "csv")
    assert code == 0
    for row in csv.DictReader(io.StringIO(out)):
        assert re.fullmatch(r"\d+\.\d\d", row["unit_usd"]) and re.fullmatch(r"\d+\.\d\d", row["extended_usd"]), row


# ---------------------------------------------------------------------------------- 7. HTML (M10)


def test_html_embedded_json_escapes_comment_and_script_openers(tmp_path: Path, run_cli: Run) -> None:
    from planner.report.html import script_safe_json

    assert script_safe_json('"<!--<script>a&b</script>"') == '"\\u003c!--\\u003cscript\\u003ea\\u0026b\\u003c/script\\u003e"'
    doc = json.loads(SWEEP_RESULT.read_text())
    evil = "x <!--<script> y </script> & z"
    doc["data"]["points"][0]["configuration"] = evil
    result = tmp_path / "evil.json"
    result.write_text(to_json(doc))
    html = tmp_path / "evil.html"
    assert run_cli("report", str(result), "--html", str(html))[0] == 0
    page = html.read_text()
    m = re.search(r'<script type="application/json" id="planner-result">(.*?)</script>', page, re.S)
    assert m
    block = m.group(1)
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block) == doc  # JSON.parse (and json.loads) read the same document back
    assert "<!--<script>" not in page


# ------------------------------------------------------------------------ 8. one file, two outputs (L9)


def test_two_outputs_naming_one_file_are_refused_up_front(tmp_path: Path, run_cli: Run) -> None:
    same = tmp_path / "same"
    assert_input_error(run_cli("size", str(CHATBOT), "-o", str(same), "--html", str(same)), "--html", "-o")
    assert not same.exists()
    junit = tmp_path / "j.xml"
    assert_input_error(run_cli("check", str(PROPOSAL), "--output", str(junit), f"--junit={junit}"), "--junit")
    assert not junit.exists()
    wl = tmp_path / "w.yaml"
    wl.write_text(CHATBOT.read_text())
    before = wl.read_bytes()
    assert_input_error(run_cli("size", str(wl), "--html", str(wl)), "refusing to overwrite an input file")
    assert wl.read_bytes() == before


# -------------------------------------------------------------------------- 9. ASCII stdout (L11)


def test_an_ascii_only_stdout_gets_ascii_boxes() -> None:
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="ascii", errors="strict", newline="\n")
    err = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
        from planner.cli import main

        code = main(["catalog", "list", "gpus"])
        stdout.flush()
    assert code == 0, err.getvalue()
    text = raw.getvalue().decode("ascii")
    assert "+--" in text and "|" in text and "━" not in text


@pytest.mark.slow
def test_pythonioencoding_ascii_does_not_crash(tmp_path: Path) -> None:
    env = {"PYTHONIOENCODING": "ascii", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "size", str(CHATBOT)], capture_output=True, env=env, cwd=REPO, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    proc.stdout.decode("ascii")
    assert b"Traceback" not in proc.stderr


# ------------------------------------------------------------------------ 10. size --verify --strict


@pytest.fixture
def failing_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """planner.api.simulate, with fewer requests and every class's simulated TTFT attainment at 50%."""
    import planner.api

    real = planner.api.simulate

    def simulate(workload: Any, deployment: Any, catalog: Any, options: Any = None, **kw: Any) -> Any:
        sim = real(workload, deployment, catalog, dataclasses.replace(options, requests=400), **kw)
        classes = tuple(dataclasses.replace(c, ttft_attainment_frac=0.5, slo_attainment_frac=0.5) for c in sim.classes)
        return dataclasses.replace(sim, classes=classes)

    monkeypatch.setattr(planner.api, "simulate", simulate)


def test_verify_strict_exits_1_when_the_simulation_misses_the_slo(failing_simulation: None, run_cli: Run) -> None:
    code, out, err = run_cli("size", str(CHATBOT), "--verify", "--strict")
    assert code == 1, err
    assert "simulated" in out and "50.0%" in out
    met = [line for line in out.splitlines() if "NO (simulated)" in line]
    assert met, out
    assert "exit 1 (--strict)" in err
    # without --strict: exit 0, but no class reads "met: yes"
    code, out, err = run_cli("size", str(CHATBOT), "--verify")
    assert code == 0 and "NO (simulated)" in out
    slo = out.split("predicted latency vs SLO")[1].split("cost and power")[0]
    assert not re.search(r"\byes\b", slo)
    assert "warning: verify: the simulation misses the SLO" in err
    code, out, _ = run_cli("size", str(CHATBOT), "--verify", "--strict", "-f", "json")
    assert code == 1 and json.loads(out)["data"]["verification"]["meets_slo"] is False
    assert_input_error(run_cli("size", str(CHATBOT), "--strict"), "--strict", "--verify")


# -------------------------------------------------------------------- 11. the distribution's name


def test_a_foreign_planner_package_is_one_error(monkeypatch: pytest.MonkeyPatch, run_cli: Run) -> None:
    import tomllib

    import planner

    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"] == planner.__distribution__
    monkeypatch.setattr(planner, "__distribution__", None)
    code, out, err = run_cli("--version")
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and "planner-disagg" in err
