"""Outputs of ``planner check``: JSON data, the rich table, markdown for pull-request comments,
GitHub workflow annotations and JUnit XML (one test case per rule and subject)."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from typing import Any

from planner.check.rules import RULES, Finding, YamlPath
from planner.check.runner import CheckResult, is_failing
from planner.units import HOURS_PER_MONTH, W_PER_KW, s_to_ms


def dotted(path: YamlPath) -> str:
    """``("pools", 1, "replicas")`` → ``pools[1].replicas``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def where(f: Finding) -> str:
    if f.file is None:
        return dotted(f.path)
    return f"{f.file}:{f.line}" if f.line is not None else f.file


def finding_row(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": f.severity,
        "subject": f.subject,
        "message": f.message,
        "observed": f.observed,
        "limit": f.limit,
        "unit": f.unit,
        "path": dotted(f.path),
        "file": f.file,
        "line": f.line,
    }


def _status(result: CheckResult, f: Finding | None) -> str:
    if f is None:
        return "pass"
    return "fail" if is_failing(f.severity, result.fail_on) else f.severity


def counts(result: CheckResult) -> dict[str, int]:
    return {s: sum(1 for f in result.findings if f.severity == s) for s in ("error", "warning", "info")}


def check_data(result: CheckResult) -> dict[str, Any]:
    ev = result.evaluation
    evaluated: dict[str, Any] | None = None
    if ev is not None:
        evaluated = {
            "usd_per_hour": ev.usd_per_hour,
            "usd_per_month": ev.usd_per_month,
            "power_kw": ev.power_w / W_PER_KW,
            "num_gpus": ev.num_gpus,
            "classes": [
                {
                    "name": c.name,
                    "ttft_at_slo_pct_ms": s_to_ms(c.ttft_at_slo_s),
                    "ttft_target_ms": s_to_ms(c.ttft_target_s),
                    "tpot_at_slo_pct_ms": s_to_ms(c.tpot_at_slo_s),
                    "tpot_target_ms": s_to_ms(c.tpot_target_s),
                    "meets_slo": c.meets_slo,
                }
                for c in ev.classes
            ],
            "pools": [
                {"subject": f"pool:{pr.pool.key}", "replicas": pr.pool.replicas, "utilization_frac": pr.utilization_frac}
                for pr in ev.pools
            ],
        }
    opt = result.optimal
    return {
        "verdict": result.verdict,
        "fail_on": result.fail_on,
        "counts": counts(result),
        "findings": [finding_row(f) for f in result.findings],
        "checks": [{"code": c.code, "subject": c.subject, "status": _status(result, c.finding)} for c in result.checks],
        "skipped_rules": list(result.skipped),
        "redundancy": int(result.policy.redundancy.value),
        "evaluated": evaluated,
        "optimal": None if opt is None else {"usd_per_hour": opt.usd_per_hour, "pools": opt.summary, "note": opt.note},
    }


def _headline(result: CheckResult) -> str:
    n = counts(result)
    parts = [f"{n[s]} {s}{'s' if n[s] != 1 else ''}" for s in ("error", "warning", "info") if n[s]]
    detail = ", ".join(parts) if parts else "no findings"
    return f"{result.verdict.upper()} ({len(result.checks)} checks, {detail}; fails on {result.fail_on})"


def _evaluated_line(result: CheckResult) -> str:
    ev = result.evaluation
    if ev is None:
        return ""
    line = f"evaluated: {ev.num_gpus} GPUs, {ev.usd_per_month:,.0f} USD/month, {ev.power_w / W_PER_KW:.1f} kW"
    if result.optimal is not None and result.optimal.usd_per_hour is not None:
        line += f"; optimal plan for the same workload: {result.optimal.usd_per_hour * HOURS_PER_MONTH:,.0f} USD/month"
    return line


def check_table(result: CheckResult, proposal: str, engine_line: str | None = None) -> str:
    """sqlfluff-style: a headline, then per finding its severity, code, subject and place, and the
    message. Plain text, not a rich renderable: the terminal width must never break a path or a
    ``file:line`` place (grep and editors read them); messages are wrapped at 100 columns."""
    lines = [f"planner check {proposal}: {_headline(result)}", *([engine_line] if engine_line else [])]
    for f in result.findings:
        lines += ["", f"{f.severity:<8}{f.code}  {f.subject}  {where(f)}"]
        lines.append(textwrap.fill(f.message, width=100, initial_indent=" " * 8, subsequent_indent=" " * 8))
    lines.append("")
    if result.evaluation is not None:
        lines.append(_evaluated_line(result))
    if result.skipped:
        lines.append(f"not run: {', '.join(result.skipped)}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def check_markdown(result: CheckResult, proposal: str, engine_line: str | None = None) -> str:
    """A pull-request comment (or a GitHub step summary)."""
    lines = [f"### planner check `{proposal}`: **{result.verdict.upper()}**", "", _headline(result), ""]
    if engine_line:
        lines += [engine_line[0].upper() + engine_line[1:] + ".", ""]
    if result.findings:
        lines += ["| severity | code | subject | message | where |", "|---|---|---|---|---|"]
        for f in result.findings:
            lines.append(f"| {f.severity} | {f.code} | `{_md(f.subject)}` | {_md(f.message)} | {_md(where(f))} |")
        lines.append("")
    if result.evaluation is not None:
        lines += [_evaluated_line(result)[0].upper() + _evaluated_line(result)[1:] + ".", ""]
    lines += ["<details><summary>rules</summary>", "", "| code | subject | status |", "|---|---|---|"]
    lines += [f"| {c.code} | `{_md(c.subject)}` | {_status(result, c.finding)} |" for c in result.checks]
    lines += [f"| {code} | | not run |" for code in result.skipped]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def check_github(result: CheckResult) -> str:
    """GitHub workflow commands: one annotation per finding at the file and line of its YAML key."""
    level = {"error": "error", "warning": "warning", "info": "notice"}
    out = []
    for f in result.findings:
        props = []
        if f.file is not None:
            props.append(f"file={_escape_property(f.file)}")
            if f.line is not None:
                props.append(f"line={f.line}")
        props.append(f"title={_escape_property(f'{f.code} {RULES[f.code].title}')}")
        out.append(f"::{level[f.severity]} {','.join(props)}::{_escape_data(f.message)}")
    out.append(f"planner check: {_headline(result)}")
    return "\n".join(out) + "\n"


def check_junit(result: CheckResult, proposal: str, engine: str | None = None) -> str:
    """JUnit XML: one suite "planner check", one test case per rule and subject; findings at or
    above ``--fail-on`` are failures, those below it pass with the finding in system-out, and rules
    not run are skipped."""
    cases: list[ET.Element] = []
    failures = 0
    for c in result.checks:
        case = ET.Element("testcase", {"classname": f"planner.check.{c.code}", "name": f"{c.code} {c.subject}", "time": "0"})
        f = c.finding
        if f is not None:
            text = f"{f.message}\n{where(f)}"
            if is_failing(f.severity, result.fail_on):
                failures += 1
                el = ET.SubElement(case, "failure", {"message": f.message, "type": f"{f.code} ({f.severity})"})
                el.text = text
            else:
                ET.SubElement(case, "system-out").text = f"{f.severity}: {text}"
        cases.append(case)
    for code in result.skipped:
        case = ET.Element("testcase", {"classname": f"planner.check.{code}", "name": code, "time": "0"})
        ET.SubElement(case, "skipped", {"message": "not run (skipped, or no evaluation: a pool cannot hold the weights)"})
        cases.append(case)
    stats = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": str(len(result.skipped))}
    root = ET.Element("testsuites", {"name": "planner check", **stats, "time": "0"})
    suite = ET.SubElement(root, "testsuite", {"name": "planner check", **stats, "time": "0"})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "proposal", "value": proposal})
    ET.SubElement(props, "property", {"name": "verdict", "value": result.verdict})
    ET.SubElement(props, "property", {"name": "fail_on", "value": result.fail_on})
    if engine:
        ET.SubElement(props, "property", {"name": "engine", "value": engine})
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def csv_rows(result: CheckResult) -> list[dict[str, Any]]:
    """One row per rule and subject (the JUnit test cases), finding columns empty where it passed."""
    rows = []
    for c in result.checks:
        row = finding_row(c.finding) if c.finding is not None else dict.fromkeys(finding_row(_BLANK))
        row.update(code=c.code, subject=c.subject, status=_status(result, c.finding))
        rows.append({"code": row.pop("code"), "subject": row.pop("subject"), "status": row.pop("status"), **row})
    return rows


_BLANK = Finding(code="", severity="info", subject="", message="", observed=None, limit=None, unit="")
