"""``planner check``: every rule passes and fails on a known case, the size → check round trip, the
output formats (JSON keys, markdown and the step summary, GitHub annotations at the right lines,
JUnit XML), exit codes 0/1/2 and byte-identical JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Run, assert_input_error, cli

from planner import api
from planner.check.rules import RULES
from planner.domain import Catalog

# These tests check the core's mechanics on figures worked out under the 2023 Splitwise engine
# profile; they pin it (the default engine's figures are in test_engine_profiles.py and the README).
ENGINE = "splitwise"


@pytest.fixture(scope="session")
def catalog(splitwise_catalog: Catalog) -> Catalog:
    return splitwise_catalog


ROOT = Path(__file__).resolve().parent.parent
PROPOSALS = ROOT / "examples" / "proposals"
CHATBOT = ROOT / "examples" / "workloads" / "chatbot.yaml"

# example -> (exit code, codes of the error findings, codes of warnings, codes of info notes)
EXPECTED: dict[str, tuple[int, set[str], set[str], set[str]]] = {
    "chatbot": (0, set(), set(), set()),
    "chatbot_plan": (0, set(), set(), set()),
    "fail_slo001_ttft": (1, {"SLO001"}, set(), set()),
    "fail_slo002_tpot": (1, {"SLO002", "SLO001", "CAP002"}, set(), set()),
    "fail_cap001_saturated": (1, {"CAP001", "CAP002", "SLO001"}, set(), set()),
    "fail_cap002_headroom": (1, {"CAP002"}, set(), set()),
    "fail_mem001_weights": (1, {"MEM001"}, set(), set()),
    "fail_net001_link": (1, {"NET001"}, set(), set()),
    "fail_bud001_budget": (1, {"BUD001"}, set(), {"EFF001"}),
    "fail_pwr001_power": (1, {"PWR001"}, set(), {"EFF001"}),
    "fail_red001_redundancy": (1, {"RED001", "SLO001", "SLO002"}, set(), set()),
    "fail_inv001_inventory": (1, {"INV001"}, set(), set()),
    "warn_eff001_overprovisioned": (0, set(), {"EFF001"}, set()),
}


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="module")
def json_runs() -> dict[str, tuple[int, dict[str, Any], str]]:
    """Every example through the CLI once (in-process), as JSON."""
    out: dict[str, tuple[int, dict[str, Any], str]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GITHUB_STEP_SUMMARY", raising=False)
        for name in EXPECTED:
            code, stdout, err = cli("check", str(PROPOSALS / f"{name}.yaml"), "--format", "json")
            out[name] = (code, json.loads(stdout), err)
    return out


def _codes(doc: dict[str, Any], severity: str) -> set[str]:
    return {f["code"] for f in doc["data"]["findings"] if f["severity"] == severity}


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if needle in line and not line.lstrip().startswith("#")]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


# -------------------------------------------------------------------------------- the examples


def test_every_example_is_expected() -> None:
    assert {p.stem for p in PROPOSALS.glob("*.yaml")} == set(EXPECTED)


def test_every_rule_has_a_failing_example_named_after_it() -> None:
    named = {n.split("_")[1].upper() for n in EXPECTED if n.startswith(("fail_", "warn_"))}
    assert named == set(RULES)
    assert set(RULES) == {
        "SLO001",
        "SLO002",
        "CAP001",
        "CAP002",
        "MEM001",
        "NET001",
        "BUD001",
        "PWR001",
        "RED001",
        "INV001",
        "EFF001",
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(json_runs: dict[str, tuple[int, dict[str, Any], str]], name: str) -> None:
    code, doc, err = json_runs[name]
    want_code, errors, warnings, infos = EXPECTED[name]
    assert code == want_code, err
    assert "Traceback" not in err
    assert err == "".join(f"warning: {w}\n" for w in doc["warnings"])  # each warning on stderr too, nothing else
    assert doc["command"] == "check"
    assert doc["status"] == ("ok" if code == 0 else "check_failed")
    data = doc["data"]
    assert data["verdict"] == ("pass" if code == 0 else "fail")
    assert _codes(doc, "error") == errors
    assert _codes(doc, "warning") == warnings
    assert _codes(doc, "info") == infos
    if name.startswith(("fail_", "warn_")):
        assert name.split("_")[1].upper() in errors | warnings
    for f in data["findings"]:
        assert set(f) >= {"code", "severity", "subject", "message", "observed", "limit", "unit"}
        assert f["file"] and isinstance(f["line"], int) and f["line"] >= 1, f
        if f["severity"] == "info":
            continue
        assert f["unit"]
        # The message carries both numbers (unbounded percentiles read "inf", JSON null).
        observed = "inf" if f["observed"] is None else f"{f['observed']:.2f}"
        limit = f"{f['limit']:.0f}" if f["unit"] in ("replicas", "GPUs") else f"{f['limit']:.2f}"
        assert observed in f["message"] or f"{f['observed']:.0f}" in f["message"], f
        assert limit in f["message"], f


def test_findings_are_sorted_by_severity_code_subject(json_runs: dict[str, tuple[int, dict[str, Any], str]]) -> None:
    rank = {"error": 0, "warning": 1, "info": 2}
    for _, doc, _ in json_runs.values():
        keys = [(rank[f["severity"]], f["code"], f["subject"]) for f in doc["data"]["findings"]]
        assert keys == sorted(keys)


def test_passing_example_passes_every_rule(json_runs: dict[str, tuple[int, dict[str, Any], str]]) -> None:
    """The passing half of every rule: each code is applied to the hand-written proposal and passes."""
    checks = json_runs["chatbot"][1]["data"]["checks"]
    assert {c["code"] for c in checks} == set(RULES)
    assert all(c["status"] == "pass" for c in checks)
    assert json_runs["chatbot"][1]["data"]["skipped_rules"] == []


def test_mem001_weights_skips_the_rules_that_need_an_evaluation(json_runs: dict[str, tuple[int, dict[str, Any], str]]) -> None:
    data = json_runs["fail_mem001_weights"][1]["data"]
    assert data["evaluated"] is None
    assert set(data["skipped_rules"]) == {c for c, r in RULES.items() if r.needs_evaluation}
    (f,) = data["findings"]
    assert f["unit"] == "GiB" and f["observed"] > f["limit"]
    assert "weights_gib 131.42 > limit 72.00" in f["message"]


def test_eff001_compares_with_the_optimal_plan(json_runs: dict[str, tuple[int, dict[str, Any], str]]) -> None:
    data = json_runs["warn_eff001_overprovisioned"][1]["data"]
    (f,) = data["findings"]
    # the optimum under the proposal's engine (splitwise), which planner size gives for its workload
    from planner import api

    cat = api.load_catalog()
    spec = api.load_workload_spec(CHATBOT)
    optimal = api.size(api.resolve_workload(spec, cat), cat).plan.evaluation.usd_per_hour
    assert data["optimal"]["usd_per_hour"] == pytest.approx(optimal, rel=1e-9)
    assert f["limit"] == pytest.approx(optimal * 1.1, rel=1e-9)
    assert f["unit"] == "USD/hour"
    assert f"{optimal:.2f}" in f["message"]
    assert "allowed hardware" in f["message"]


def test_bud001_pwr001_units(json_runs: dict[str, tuple[int, dict[str, Any], str]]) -> None:
    (bud,) = [f for f in json_runs["fail_bud001_budget"][1]["data"]["findings"] if f["code"] == "BUD001"]
    assert (bud["unit"], bud["limit"]) == ("USD/month", pytest.approx(400000))
    assert "usd_per_month 436509.73 > limit 400000.00" in bud["message"]  # GPUs 431,342.40 + KV ports 5,167.33
    (pwr,) = [f for f in json_runs["fail_pwr001_power"][1]["data"]["findings"] if f["code"] == "PWR001"]
    assert (pwr["unit"], pwr["limit"]) == ("kW", pytest.approx(20))


# ----------------------------------------------------------------------------- rules, directly


def _proposal(tmp_path: Path, pools: str, policy: str = "", name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"workload: {CHATBOT}\npools:\n{pools}" + (f"policy:\n{policy}" if policy else ""))
    return path


BASE_POOLS = (
    "  - {role: prefill, gpu: h100-sxm, tp: 8, replicas: 7, link: ib-ndr-400}\n"
    "  - {role: decode, gpu: h100-sxm, tp: 4, replicas: 10, max_batch: 64}\n"
)


def test_mem001_kv_cache_at_the_proposed_batch(tmp_path: Path, catalog: Catalog) -> None:
    path = _proposal(tmp_path, BASE_POOLS.replace("max_batch: 64", "max_batch: 512"))
    result = api.check(path, catalog, skip=["EFF001"])
    (mem,) = [f for f in result.findings if f.code == "MEM001"]
    assert "kv_cache_gib" in mem.message and "max_batch 512" in mem.message
    assert mem.observed is not None and mem.limit is not None and mem.observed > mem.limit
    assert mem.path == ("pools", 1, "max_batch")
    assert mem.line == 4


def test_red001_passes_without_redundancy(tmp_path: Path, catalog: Catalog) -> None:
    one = BASE_POOLS.replace("replicas: 10", "replicas: 1")
    failing = api.check(_proposal(tmp_path, one, name="a.yaml"), catalog, skip=["EFF001"])
    assert "RED001" in {f.code for f in failing.findings}
    relaxed = api.check(_proposal(tmp_path, one, "  redundancy: 0\n", name="b.yaml"), catalog, skip=["EFF001"])
    assert "RED001" not in {f.code for f in relaxed.findings}
    red = [c for c in relaxed.checks if c.code == "RED001"]
    assert len(red) == 2 and all(c.finding is None for c in red)


def test_policy_overrides_the_workload_constraints(tmp_path: Path, catalog: Catalog) -> None:
    """Headroom 0.5 trips CAP002 on the optimal plan; the budget from the policy wins over the workload's."""
    result = api.check(_proposal(tmp_path, BASE_POOLS, "  min_headroom_frac: 0.5\n  budget_usd_per_month: 900000\n"), catalog)
    assert {f.code for f in result.findings} == {"CAP002"}
    assert result.policy.budget_usd_per_hour is not None
    assert result.policy.budget_usd_per_hour.path == ("policy", "budget_usd_per_month")
    for f in result.findings:
        assert f.limit == pytest.approx(0.5)


def test_skip(run_cli: Run) -> None:
    code, out, err = run_cli("check", str(PROPOSALS / "fail_cap002_headroom.yaml"), "--skip", "cap002", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["data"]["skipped_rules"] == ["CAP002"]
    assert doc["inputs"]["skip"] == ["CAP002"]


# ------------------------------------------------------------------------------------ round trip


@pytest.fixture(scope="module")
def plan_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("plan") / "plan.yaml"
    assert cli("size", str(CHATBOT), "--format", "yaml", "-o", str(out))[0] == 0
    return out.read_text()


def test_round_trip_plan_passes(tmp_path: Path, plan_text: str, run_cli: Run) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text)
    code, out, err = run_cli("check", str(path), "-f", "json")
    assert code == 0, out + err
    data = json.loads(out)["data"]
    assert data["findings"] == []
    # The optimal plan is the plan itself: EFF001 compares it with an equal cost.
    assert data["optimal"]["usd_per_hour"] == pytest.approx(data["evaluated"]["usd_per_hour"], rel=1e-9)


def test_round_trip_plan_keeps_its_engine(tmp_path: Path, plan_text: str, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan records the engine it was sized for (this module's, splitwise) and is checked under it,
    whatever engine is the default now."""
    from planner.io.catalog import ENGINE_ENV_VAR

    assert yaml.safe_load(plan_text)["inputs"]["engine"]["id"] == ENGINE
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text)
    monkeypatch.delenv(ENGINE_ENV_VAR, raising=False)
    code, out, err = run_cli("check", str(path), "-f", "json")
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["inputs"]["engine"]["id"] == ENGINE
    assert doc["data"]["findings"] == []


@pytest.mark.parametrize(
    "workload",
    [
        w if w == "chatbot" else pytest.param(w, marks=pytest.mark.slow)  # the default lane: chatbot
        for w in sorted(p.stem for p in (ROOT / "examples" / "workloads").glob("*.yaml"))
    ],
)
def test_round_trip_every_example_workload(tmp_path: Path, run_cli: Run, workload: str) -> None:
    """Whatever planner size returns, planner check passes: no finding at all, EFF001 included."""
    plan = tmp_path / "plan.yaml"
    assert run_cli("size", str(ROOT / "examples" / "workloads" / f"{workload}.yaml"), "-f", "yaml", "-o", str(plan))[0] == 0
    code, out, err = run_cli("check", str(plan), "-f", "json")
    assert code == 0, out + err
    assert json.loads(out)["data"]["findings"] == []


def test_round_trip_json_plan_passes(tmp_path: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("size", str(CHATBOT), "--format", "json")
    assert code == 0
    path = tmp_path / "plan.json"
    path.write_text(out)
    code, out, err = run_cli("check", str(path))
    assert code == 0, out + err
    assert "PASS" in out


def test_round_trip_one_decode_replica_less_fails(tmp_path: Path, plan_text: str, run_cli: Run) -> None:
    doc = yaml.safe_load(plan_text)
    (i,) = [k for k, p in enumerate(doc["data"]["pools"]) if p["role"] == "decode"]
    doc["data"]["pools"][i]["replicas"] -= 1
    path = tmp_path / "minus_one.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out, err = run_cli("check", str(path), "-f", "github")
    assert code == 1, out + err
    (line,) = [ln for ln in out.splitlines() if "CAP002" in ln]
    replicas_line = [
        n + 1
        for n, ln in enumerate(path.read_text().splitlines())
        if ln.strip() == f"replicas: {doc['data']['pools'][i]['replicas']}"
    ]
    assert line.startswith(f"::error file={path},line=")
    assert int(re.search(r"line=(\d+)", line).group(1)) in replicas_line  # type: ignore[union-attr]


def test_round_trip_tighter_tpot_fails(tmp_path: Path, plan_text: str, run_cli: Run) -> None:
    doc = yaml.safe_load(plan_text)
    doc["inputs"]["workload"]["classes"][0]["slo"]["tpot_p99_ms"] = 40  # the plan predicts 44.8 ms
    path = tmp_path / "tight.yaml"
    text = yaml.safe_dump(doc, sort_keys=False)
    path.write_text(text)
    code, out, err = run_cli("check", str(path), "-f", "json")
    assert code == 1, err
    findings = json.loads(out)["data"]["findings"]
    (slo,) = [f for f in findings if f["code"] == "SLO002"]
    assert slo["limit"] == pytest.approx(40)
    assert 40 < slo["observed"] < 60  # a finite prediction: the pool runs, just too slowly
    assert "> limit 40.00" in slo["message"] and "tpot_p99_ms" in slo["message"]
    want = [n + 1 for n, ln in enumerate(text.splitlines()) if ln.strip() == "tpot_p99_ms: 40"]
    assert [slo["line"]] == want


# ---------------------------------------------------------------------------------------- formats


def test_github_annotations_point_at_the_offending_keys(run_cli: Run) -> None:
    code, out, _ = run_cli("check", str(PROPOSALS / "fail_cap001_saturated.yaml"), "-f", "github")
    assert code == 1
    lines = out.splitlines()
    proposal = PROPOSALS / "fail_cap001_saturated.yaml"
    pool_line = _line_of(proposal, "replicas: 3")
    workload_slo = _line_of(CHATBOT, "slo:")
    got = {re.search(r"title=(\w+)", ln).group(1): ln for ln in lines if ln.startswith("::")}  # type: ignore[union-attr]
    assert set(got) == {"CAP001", "CAP002", "SLO001"}
    assert got["CAP001"].startswith(f"::error file={proposal},line={pool_line},title=CAP001 ")
    assert got["SLO001"].startswith(f"::error file={CHATBOT},line={workload_slo},")
    assert lines[-1].startswith("planner check: FAIL")


@pytest.mark.parametrize(
    ("name", "code", "needle"),
    [
        ("fail_bud001_budget", "BUD001", "budget_usd_per_month: 400000"),
        ("fail_pwr001_power", "PWR001", "power_cap_kw: 20"),
        ("fail_net001_link", "NET001", "- {link: ethernet-25, ports: 4}"),
        ("fail_mem001_weights", "MEM001", "tp: 1,"),
        ("fail_cap002_headroom", "CAP002", "replicas: 6"),
        ("warn_eff001_overprovisioned", "EFF001", "max_cost_above_optimal_frac: 0.1"),
    ],
)
def test_annotation_lines(json_runs: dict[str, tuple[int, dict[str, Any], str]], name: str, code: str, needle: str) -> None:
    (f,) = [f for f in json_runs[name][1]["data"]["findings"] if f["code"] == code]
    path = PROPOSALS / f"{name}.yaml"
    assert (f["file"], f["line"]) == (str(path), _line_of(path, needle))


def test_github_escapes_and_levels(run_cli: Run) -> None:
    code, out, _ = run_cli("check", str(PROPOSALS / "fail_bud001_budget.yaml"), "-f", "github")
    assert code == 1
    assert any(ln.startswith("::error ") and "BUD001" in ln for ln in out.splitlines())
    assert any(ln.startswith("::notice ") and "EFF001" in ln for ln in out.splitlines())
    for ln in out.splitlines():
        if ln.startswith("::"):
            props = ln.split("::")[1]
            assert "\n" not in ln and props.count(",") == 2  # file, line, title: commas in values escaped


def test_markdown_and_step_summary(tmp_path: Path, run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = run_cli("check", str(PROPOSALS / "fail_slo001_ttft.yaml"), "-f", "markdown")
    assert code == 1
    assert "**FAIL**" in out and "| error | SLO001 |" in out
    assert summary.read_text() == "earlier step\n" + out + "\n"
    run_cli("check", str(PROPOSALS / "chatbot.yaml"), "-f", "json")
    assert summary.read_text().count("### planner check") == 1  # JSON runs do not append


def test_junit_is_junit_xml(tmp_path: Path, run_cli: Run) -> None:
    report = tmp_path / "junit.xml"
    code, _, _ = run_cli("check", str(PROPOSALS / "fail_mem001_weights.yaml"), "--junit", str(report))
    assert code == 1
    root = ET.fromstring(report.read_text())
    assert root.tag == "testsuites"
    (suite,) = list(root)
    assert suite.tag == "testsuite" and suite.get("name") == "planner check"
    cases = suite.findall("testcase")
    assert {c.tag for c in suite} <= {"properties", "testcase"}
    assert int(suite.get("tests", "-1")) == len(cases) == int(root.get("tests", "-1"))
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert int(suite.get("failures", "-1")) == len(failures) == 1
    assert int(suite.get("skipped", "-1")) == len(skipped) == sum(1 for r in RULES.values() if r.needs_evaluation)
    assert suite.get("errors") == "0"
    for c in cases:
        assert c.get("name") and c.get("classname", "").startswith("planner.check.")
        assert {child.tag for child in c} <= {"failure", "skipped", "system-out", "error", "system-err"}
        assert float(c.get("time", "0")) >= 0
    (failure,) = [c.find("failure") for c in failures]
    assert failure is not None and failure.get("message", "").startswith("decode pool 40x h100-sxm tp1: weights_gib")
    assert failures[0].get("name") == "MEM001 pool:decode__h100-sxm__tp1__b64"


def test_junit_warnings_pass_below_fail_on(tmp_path: Path, run_cli: Run) -> None:
    proposal = str(PROPOSALS / "warn_eff001_overprovisioned.yaml")
    report = tmp_path / "j.xml"
    assert run_cli("check", proposal, "--junit", str(report))[0] == 0
    case = next(c for c in ET.fromstring(report.read_text()).iter("testcase") if c.get("name", "").startswith("EFF001"))
    assert case.find("failure") is None and "warning: usd_per_hour" in (case.findtext("system-out") or "")
    assert run_cli("check", proposal, "--junit", str(report), "--fail-on", "warning")[0] == 1
    case = next(c for c in ET.fromstring(report.read_text()).iter("testcase") if c.get("name", "").startswith("EFF001"))
    assert case.find("failure") is not None


def test_csv_one_row_per_check(run_cli: Run) -> None:
    code, out, _ = run_cli("check", str(PROPOSALS / "fail_cap002_headroom.yaml"), "-f", "csv")
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 15
    (bad,) = [r for r in rows if r["status"] == "fail"]
    assert (bad["code"], bad["unit"]) == ("CAP002", "frac")


def test_table(run_cli: Run) -> None:
    code, out, _ = run_cli("check", str(PROPOSALS / "fail_net001_link.yaml"))
    assert code == 1
    assert out.startswith(f"planner check {PROPOSALS / 'fail_net001_link.yaml'}: FAIL (")
    assert "NET001" in out and "kv_transfer_gbyte_per_s 13.11 > limit 8.75" in out
    assert all(not ln.endswith(" ") for ln in out.splitlines())


def test_table_never_breaks_a_long_path(run_cli: Run, tmp_path: Path) -> None:
    # regression: rich wrapped the headline and the file:line place at the terminal width when the
    # checkout lived under a long path (a clean clone in CI), leaving trailing spaces and split paths
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 6))
    deep.mkdir(parents=True)
    proposal = deep / "fail_net001_link.yaml"
    text = (PROPOSALS / "fail_net001_link.yaml").read_text()
    proposal.write_text(text.replace("../workloads/chatbot.yaml", str(PROPOSALS.parent / "workloads" / "chatbot.yaml")))
    code, out, _ = run_cli("check", str(proposal))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"planner check {proposal}: FAIL (15 checks")
    assert any(ln.endswith(f"{proposal}:11") and ln.startswith("error   NET001") for ln in lines)
    assert all(not ln.endswith(" ") for ln in lines)


def test_json_is_byte_identical(run_cli: Run) -> None:
    args = ("check", str(PROPOSALS / "fail_bud001_budget.yaml"), "-f", "json")
    assert run_cli(*args)[1] == run_cli(*args)[1]


# ------------------------------------------------------------------------------------- exit codes


@pytest.mark.slow
def test_exit_codes_0_1_and_no_fail(run_cli: Run) -> None:
    assert run_cli("check", str(PROPOSALS / "chatbot.yaml"))[0] == 0
    assert run_cli("check", str(PROPOSALS / "fail_cap002_headroom.yaml"))[0] == 1
    code, out, _ = run_cli("check", str(PROPOSALS / "fail_cap002_headroom.yaml"), "--no-fail", "-f", "json")
    assert code == 0
    assert json.loads(out)["data"]["verdict"] == "fail"
    assert run_cli("check", str(PROPOSALS / "warn_eff001_overprovisioned.yaml"))[0] == 0
    assert run_cli("check", str(PROPOSALS / "warn_eff001_overprovisioned.yaml"), "--fail-on", "warning")[0] == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (None, "no such file"),
        ("pools: [\n", "p.yaml:"),
        (f"workload: {CHATBOT}\npools:\n  - {{role: decode, gpu: h100-sxm, tp: 4, replicas: -1}}\n", "pools"),
        (f"workload: {CHATBOT}\npools:\n  - {{role: decode, gpu: h999, tp: 4, replicas: 1}}\n", "h999"),
        (f"workload: {CHATBOT}\npools:\n  - {{role: decode, gpu: h100-sxm, tp: 3, replicas: 1}}\n", "pools[0].tp"),
        (f"workload: {CHATBOT}\npools:\n  - {{role: prefill, gpu: h100-sxm, tp: 8, replicas: 1}}\n", "link"),
        ("workload: nowhere.yaml\npools:\n  - {role: decode, gpu: h100-sxm, tp: 4, replicas: 1}\n", "nowhere.yaml"),
    ],
)
def test_invalid_input_exits_2(tmp_path: Path, run_cli: Run, body: str | None, needle: str) -> None:
    path = tmp_path / "p.yaml"
    if body is not None:
        path.write_text(body)
    assert_input_error(run_cli("check", str(path)), needle)


def test_bad_flags_exit_2(run_cli: Run) -> None:
    proposal = str(PROPOSALS / "chatbot.yaml")
    lines = assert_input_error(run_cli("check", proposal, "--skip", "XYZ001"))
    assert lines[0].startswith("error: --skip XYZ001: no such rule")
    assert_input_error(run_cli("check", proposal, "--fail-on", "info"))


def test_schema_proposal(run_cli: Run) -> None:
    code, out, _ = run_cli("schema", "proposal")
    assert code == 0
    schema = json.loads(out)
    assert {"workload", "pools", "policy", "links"} <= set(schema["properties"])
    assert "max_cost_above_optimal_frac" in json.dumps(schema)


def test_check_package_imports_nothing_heavy() -> None:
    code = (
        "import json, sys\n"
        "import planner.check, planner.check.rules, planner.check.runner\n"
        "print(json.dumps(sorted(m for m in ('pulp', 'rich', 'typer', 'yaml', 'pydantic') if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_ci_files() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "planner-check" and "planner check" in hook["entry"]
    # The entry runs as pre-commit runs it: shlex-split, then the args and the file names appended.
    argv = [*shlex.split(hook["entry"]), "--fail-on", "warning", "examples/proposals/chatbot.yaml"]
    argv += ["examples/proposals/warn_eff001_overprovisioned.yaml"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("planner check examples/proposals/") == 2
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "planner-check.yml").read_text())
    steps = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    assert any("planner check" in s and "--format github" in s and "--junit" in s for s in steps)
