"""HTML reports: valid, self-contained, every chart present and labelled with units, the page's
numbers the JSON's, deterministic, and rendered by headless Chromium without console errors."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import Run, assert_input_error, cli

REPO = Path(__file__).resolve().parent.parent
CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"
CHROMIUM = Path("/usr/bin/chromium")
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr", "track", "embed", "param"}
SIZE_CHARTS = {
    "chart-cost": ("USD/month",),
    "chart-pools": ("GPUs (count)", "utilization (%)"),
    "chart-latency": ("TTFT (ms)", "TPOT (ms)"),
    "chart-capacity": ("arrival rate (requests/s)", "cost (USD/month)", "GPUs (count)"),
    "chart-pareto": ("TTFT target (ms", "cost (USD/month)", "TPOT target"),
}


@pytest.fixture(scope="module")
def size_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """(HTML of planner size --html, its JSON output, the saved JSON file)."""
    d = tmp_path_factory.mktemp("html")
    code, _, _ = cli("size", str(CHATBOT), "--verify", "-f", "json", "-o", str(d / "result.json"), "--html", str(d / "r.html"))
    assert code == 0
    return (d / "r.html").read_text(), (d / "result.json").read_text(), d


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [v for k, v in attrs if k == "id" and v]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [v for k, v in attrs if k == "id" and v]

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def _check_valid(page: str) -> _Checker:
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert '<meta charset="utf-8">' in page
    c = _Checker()
    c.feed(page)
    c.close()
    assert c.errors == [] and c.stack == []
    assert len(c.ids) == len(set(c.ids)), "duplicate element ids"
    return c


def _check_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", page, re.I)
    assert "@import" not in page and "<link" not in page and "<img" not in page and "<iframe" not in page
    # The only URLs are XML namespace names (never fetched).
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


def _figure(page: str, chart_id: str) -> str:
    m = re.search(rf'<figure id="{chart_id}"><figcaption>(.*?)</figcaption>(<svg.*?</svg>)</figure>', page, re.S)
    assert m, chart_id
    return m.group(1) + m.group(2)


def _json_block(page: str, block_id: str) -> str:
    m = re.search(rf'<script type="application/json" id="{block_id}">(.*?)</script>', page, re.S)
    assert m, block_id
    return m.group(1).replace("<\\/", "</")


@pytest.mark.slow
def test_size_html_is_valid_and_self_contained(size_report: tuple[str, str, Path]) -> None:
    page = size_report[0]
    ids = _check_valid(page).ids
    _check_self_contained(page)
    assert {*SIZE_CHARTS, "chart-simulation", "planner-result", "planner-sweeps"} <= set(ids)


@pytest.mark.slow
@pytest.mark.parametrize("chart_id", sorted(SIZE_CHARTS))
def test_each_chart_is_present_and_labelled_with_units(chart_id: str, size_report: tuple[str, str, Path]) -> None:
    fig = _figure(size_report[0], chart_id)
    assert re.search(r"\((USD/month|ms|%|requests/s|GPUs)", fig.split("<svg")[0]), "caption names a unit"
    for label in SIZE_CHARTS[chart_id]:
        assert label in fig, (chart_id, label)
    assert fig.count("<text") >= 3  # text stays text: titles and axis labels are searchable


@pytest.mark.slow
def test_simulation_chart_when_verify_ran(size_report: tuple[str, str, Path]) -> None:
    fig = _figure(size_report[0], "chart-simulation")
    assert "10,000 requests" in fig and "SLO attainment (% of requests)" in fig and "at SLO percentile (ms)" in fig


@pytest.mark.slow
def test_numbers_in_the_page_are_the_json(size_report: tuple[str, str, Path]) -> None:
    page, json_text, _ = size_report
    assert _json_block(page, "planner-result") == json_text
    data = json.loads(json_text)["data"]
    body = page.split('<script type="application/json"')[0]
    assert f'<td class="n">{data["cost"]["usd_per_month"]:,.0f}</td>' in body
    assert f'<td class="n">{data["num_gpus"]}</td>' in body
    assert f"{100 * data['savings_frac']:.1f}%" in body
    for p in data["pools"]:
        assert f"{p['role']} {p['replicas']}x TP{p['tp']} {p['gpu']}" in page
    for b in data["baselines"]:
        if b["feasible"]:
            assert f"{b['cost']['usd_per_month']:,.0f}" in body
    sweeps = json.loads(_json_block(page, "planner-sweeps"))
    assert len(sweeps["capacity_curve"]) == 8 and len(sweeps["slo_grid"]) == 16
    now = [p for p in sweeps["capacity_curve"] if p["rate_rps"] == 20]
    assert now and now[0]["usd_per_month"] == data["cost"]["usd_per_month"]


@pytest.mark.slow
def test_report_of_the_saved_json_is_byte_identical(size_report: tuple[str, str, Path]) -> None:
    page, _, d = size_report
    code, _, _ = cli("report", str(d / "result.json"), "--html", str(d / "again.html"), "--jobs", "1")
    assert code == 0
    assert (d / "again.html").read_text() == page


def test_sweep_html(tmp_path: Path) -> None:
    out = tmp_path / "s.html"
    code, text, _ = cli("sweep", str(CHATBOT), "--vary", "rate_rps=2,10,20", "-f", "json", "--html", str(out))
    assert code == 0
    page = out.read_text()
    _check_valid(page)
    _check_self_contained(page)
    assert _json_block(page, "planner-result") == text
    assert "(USD/month)" in _figure(page, "chart-sweep-cost") and "rate_rps (requests/s)" in _figure(page, "chart-sweep-cost")
    assert "savings vs best co-located (%)" in _figure(page, "chart-sweep-savings")
    (tmp_path / "s.json").write_text(text)
    code, _, _ = cli("report", str(tmp_path / "s.json"), "--html", str(tmp_path / "s2.html"))
    assert code == 0 and (tmp_path / "s2.html").read_text() == page


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"schema_version": 1, "command": "estimate", "status": "ok"}',
        '{"schema_version": 1, "command": "size", "status": "ok", "inputs": {}, "data": {}}',
        "[1, 2]",
    ],
)
def test_report_rejects_other_files(content: str, tmp_path: Path, run_cli: Run) -> None:
    src = tmp_path / "x.json"
    src.write_text(content)
    assert_input_error(run_cli("report", str(src), "--html", str(tmp_path / "x.html")))
    assert not (tmp_path / "x.html").exists()


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/install-chromium)")
def test_renders_in_headless_chromium_without_console_errors(size_report: tuple[str, str, Path]) -> None:
    d = size_report[2]
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                (d / "r.html").as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert 'data-rendered="ok"' in dom  # the page's script ran and every JSON block parsed
    for chart_id in (*SIZE_CHARTS, "chart-simulation"):
        assert f'<figure id="{chart_id}">' in dom
    assert dom.count("<svg") >= len(SIZE_CHARTS) + 1
    bad = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert bad == []
