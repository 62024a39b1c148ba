"""HTML reports: valid, self-contained, every chart present and labelled with units, the page's
numbers the JSON's, deterministic, and rendered by headless Chromium without console errors."""

from __future__ import annotations

import copy
import html
import json
import re
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import Run, assert_input_error, cli

from planner.report.html import (
    Plot,
    _pareto_plot,
    _plt,
    _pool_label,
    bom_rows,
    figure_of,
    pool_styles,
    recommendation,
    size_html,
    size_plots,
    sweep_plots,
)

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


# ---------------------------------------------------------------------------------------------
# The report as a procurement document: recommendation, inputs and assumptions, bill of materials, chart geometry

SUMMARIZATION = REPO / "examples" / "workloads" / "summarization.yaml"


@pytest.fixture(scope="module")
def size_docs() -> dict[str, dict[str, Any]]:
    """The size JSON of an example where disaggregation pays (summarization) and one where it does not (chatbot)."""
    docs = {}
    for name, path in (("pays", SUMMARIZATION), ("does_not_pay", CHATBOT)):
        code, text, _ = cli("size", str(path), "-f", "json")
        assert code == 0
        docs[name] = json.loads(text)
    assert docs["pays"]["data"]["savings_frac"] > 0 > docs["does_not_pay"]["data"]["savings_frac"]
    return docs


def _body(page: str) -> str:
    return page.split('<script type="application/json"')[0]


@pytest.mark.parametrize("name", ["pays", "does_not_pay"])
def test_procurement_sections_exist(name: str, size_docs: dict[str, dict[str, Any]]) -> None:
    doc = size_docs[name]
    page = size_html(doc, None)
    _check_valid(page)
    body = _body(page)
    assert body.index('id="recommendation"') < body.index("<h2>Summary</h2>")  # the recommendation comes first
    for section in ('id="inputs"', 'id="bom"', "<h3>Request classes</h3>", "<h3>Constraints</h3>", "<h3>Pricing basis</h3>"):
        assert section in body, section
    wl = doc["inputs"]["workload"]
    for c in wl["classes"]:
        assert f"<td>{c['name']}</td>" in body and f'<td class="n">{c["rate_rps"]:g}</td>' in body
        for key, value in c["slo"].items():
            assert f"{key} {value:g}" in body
    for key in wl["constraints"]:
        assert f"<td>{key}</td>" in body
    assert f"<td>mode</td><td>{wl['pricing']['mode']}</td>" in body
    assert "<td>whole_nodes</td><td>no</td>" in body
    engine = doc["inputs"]["engine"]
    assert f"<td>engine version</td><td>{engine['version']}</td>" in body
    for item in doc["data"]["line_items"]:
        if item["sku"].startswith("gpu:"):
            assert item["source"] in body and "as of" in item["description"]
    transferred = [w for w in doc["warnings"] if "transferred from" in w]
    assert transferred, "the examples' H100 power factors are transferred"
    factors = re.search(r"<td>factors</td><td>(.*?)</td>", body)
    assert factors and all(html.escape(w) in factors.group(1) for w in transferred)
    for w in doc["warnings"]:
        assert f'<li class="warn">{html.escape(w)}</li>' in body


@pytest.mark.parametrize("name", ["pays", "does_not_pay"])
def test_bill_of_materials_sums_to_the_line_items_and_the_cost(name: str, size_docs: dict[str, dict[str, Any]]) -> None:
    data = size_docs[name]["data"]
    rows = bom_rows(data)
    priced = [r for r in rows if r["extended_usd"] is not None]
    assert priced == data["line_items"]
    total = sum(r["extended_usd"] for r in priced)
    assert total == pytest.approx(sum(i["extended_usd"] for i in data["line_items"]), rel=1e-12)
    assert total == pytest.approx(data["cost"]["usd_per_month"], rel=1e-9)
    body = _body(size_html(size_docs[name], None))
    assert f'<td>total</td><td>priced line items, per month</td><td></td><td></td><td class="n">{total:,.2f}</td>' in body
    assert "not itemized" not in body
    # Every part with no public price is a row with its count, never a price of 0.
    missing = [(lk, p) for lk in data["links"] for p in lk["port"]["parts"] if p["usd_per_port"] is None]
    assert missing, "roce-200's switch ports and cables have no public price"
    for lk, part in missing:
        count = part["quantity_per_port"] * (lk["prefill_ports"] + lk["decode_ports"])
        row = re.search(rf"<tr><td>{part['part']}:{part['component']}</td>.*?</tr>", body)
        assert row, part["component"]
        assert f'<td class="n">{count}</td><td class="n">no public price</td><td class="n">no public price</td>' in row.group(0)
    for nd in data["nodes"]:
        assert f'<td>{nd["gpu"]}</td><td class="n">{nd["nodes"]}</td><td class="n">{nd["gpus_per_node"]}</td>' in body
    assert f"{data['power_kw']:.1f} kW" in body
    # No rack budget in the examples: racks are said to be not computed, nodes' NICs and kW are shown.
    assert "Racks: not computed: constraints.rack_power_kw" in body
    for nd in data["nodes"]:
        per_node = nd["compute_nics_per_node"]
        nics = "not in the catalog" if nd["compute_nics"] is None else f"{nd['compute_nics']} ({per_node} per node)"
        assert f'<td class="n">{nics}</td>' in body
        assert f'<td class="n">{nd["peak_kw_per_node"]:.2f}</td><td class="n">not computed</td>' in body


def test_bill_of_materials_counts_racks_from_the_rack_budget(tmp_path: Path) -> None:
    """With constraints.rack_power_kw the nodes table gives nodes per rack = floor(budget / node peak kW) and racks =
    ceil(nodes / that), each as the JSON says; the note names the budget."""
    text = CHATBOT.read_text().replace("constraints:", "constraints:\n  rack_power_kw: 25", 1)
    path = tmp_path / "w.yaml"
    path.write_text(text)
    out = tmp_path / "r.html"
    code, js, err = cli("size", str(path), "-f", "json", "--html", str(out))
    assert code == 0, err
    data = json.loads(js)["data"]
    body = _body(out.read_text())
    assert "a 25 kW budget (constraints.rack_power_kw)" in body
    for nd in data["nodes"]:
        per_rack = int(25 // nd["peak_kw_per_node"])
        assert nd["nodes_per_rack"] == per_rack >= 1
        assert nd["racks"] == -(-nd["nodes"] // per_rack)
        assert nd["peak_kw_per_rack"] == pytest.approx(min(nd["nodes"], per_rack) * nd["peak_kw_per_node"])
        row = (
            f'<td class="n">{nd["peak_kw_per_node"]:.2f}</td><td class="n">{per_rack}</td><td class="n">{nd["racks"]}</td>'
            f'<td class="n">{nd["peak_kw_per_rack"]:.1f}</td>'
        )
        assert row in body


def test_recommendation_when_disaggregation_pays(size_docs: dict[str, dict[str, Any]]) -> None:
    doc = size_docs["pays"]
    data = doc["data"]
    what, why = recommendation(doc)
    best = min((b for b in data["baselines"] if b["name"].startswith("colocated")), key=lambda b: b["cost"]["usd_per_month"])
    saved = best["cost"]["usd_per_month"] - data["cost"]["usd_per_month"]
    assert what.startswith("Disaggregated serving (")
    assert f"{100 * data['savings_frac']:.1f}% ({saved:,.0f} USD/month) less than the best co-located baseline" in what
    assert best["name"] in what and f"{data['num_gpus']} GPUs" in why and f"{best['num_gpus']} GPUs" in why
    assert html.escape(what) in size_html(doc, None)


def test_recommendation_when_disaggregation_does_not_pay(size_docs: dict[str, dict[str, Any]]) -> None:
    doc = size_docs["does_not_pay"]
    data = doc["data"]
    what, why = recommendation(doc)
    best = min((b for b in data["baselines"] if b["name"].startswith("colocated")), key=lambda b: b["cost"]["usd_per_month"])
    extra = data["cost"]["usd_per_month"] - best["cost"]["usd_per_month"]
    assert what.startswith(f"Co-located serving, {best['name']}")
    assert f"costs {-100 * data['savings_frac']:.1f}% ({extra:,.0f} USD/month) more than it" in what
    assert why.startswith("Short prompts or low load leave the separate pools under-used: ")  # the warning's reason


def test_recommendation_without_a_feasible_colocated_baseline(size_docs: dict[str, dict[str, Any]]) -> None:
    doc = copy.deepcopy(size_docs["pays"])
    for b in doc["data"]["baselines"]:
        if b["name"].startswith("colocated"):
            b.update(feasible=False, note="no replica meets the TPOT target")
    doc["data"]["savings_frac"] = None
    what, why = recommendation(doc)
    assert what.startswith("Disaggregated serving (") and "nothing co-located to compare it with" in what
    assert why.startswith("no co-located baseline is feasible: colocated-h100-sxm: no replica meets the TPOT target")


def test_new_sections_escape_their_text(size_docs: dict[str, dict[str, Any]]) -> None:
    doc = copy.deepcopy(size_docs["pays"])
    doc["warnings"].append("<b>bold</b> & co")
    doc["data"]["line_items"][0]["description"] += " <i>x</i>"
    doc["inputs"]["workload"]["classes"][0]["name"] = "<script>alert(1)</script>"
    body = _body(size_html(doc, None))
    assert "<b>bold</b>" not in body and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in body
    assert "<i>x</i>" not in body and "&lt;i&gt;x&lt;/i&gt;" in body
    assert "<script>alert" not in body


def _boxes_overlap(a: Any, b: Any) -> bool:
    return bool(a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1)


def _check_geometry(plot: Plot) -> None:
    """No legend over any plot area, and no axes' tick labels or axis labels over another axes' plot area."""
    fig = figure_of(plot)
    try:
        renderer = fig.canvas.get_renderer()
        axes = fig.axes
        frames = [ax.get_window_extent(renderer) for ax in axes]
        legends = [*fig.legends, *(ax.get_legend() for ax in axes if ax.get_legend() is not None)]
        for lg in legends:
            box = lg.get_window_extent(renderer)
            assert not any(_boxes_overlap(box, f) for f in frames), (plot.chart_id, "legend over a plot area")
        for ax in axes:
            texts = [ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
            mine = ax.get_window_extent(renderer)
            for t in texts:
                if not t.get_text() or not t.get_visible():
                    continue
                box = t.get_window_extent(renderer)
                for other, f in zip(axes, frames, strict=True):
                    # a twin axes shares the plot area; its labels sit outside it like its own
                    if other is not ax and not _boxes_overlap(mine, f):
                        assert not _boxes_overlap(box, f), (plot.chart_id, t.get_text(), "over the next axes")
    finally:
        _plt().close(fig)


@pytest.mark.parametrize("name", ["pays", "does_not_pay"])
def test_chart_legends_and_labels_keep_off_the_plot_areas(name: str, size_docs: dict[str, dict[str, Any]]) -> None:
    for plot in size_plots(size_docs[name], None):
        _check_geometry(plot)


@pytest.mark.slow
def test_chart_geometry_with_sweeps_and_simulation(size_report: tuple[str, str, Path]) -> None:
    page = size_report[0]
    doc = json.loads(_json_block(page, "planner-result"))
    plots = size_plots(doc, json.loads(_json_block(page, "planner-sweeps")))
    assert {"chart-capacity", "chart-pareto", "chart-simulation"} <= {p.chart_id for p in plots}
    for plot in plots:
        _check_geometry(plot)


def test_geometry_check_can_fail() -> None:
    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        ax.barh([0, 1], [5, 9], label="pool")
        ax.legend(loc="lower right")  # inside the plot area, over the bars

    with pytest.raises(AssertionError, match="legend over a plot area"):
        _check_geometry(Plot("chart-bad", "bad", draw))


@pytest.mark.parametrize("name", ["pays", "does_not_pay"])
def test_one_colour_per_pool_and_the_same_in_every_chart(name: str, size_docs: dict[str, dict[str, Any]]) -> None:
    data = size_docs[name]["data"]
    styles = pool_styles(data)
    assert len(set(styles.values())) == len(styles)  # distinct pools, distinct (colour, hatch)
    plots = {p.chart_id: p for p in size_plots(size_docs[name], None)}
    from matplotlib.colors import to_hex

    cost = figure_of(plots["chart-cost"])
    pools = figure_of(plots["chart-pools"])
    try:
        legend = cost.legends[0]
        drawn = {t.get_text(): to_hex(h.get_facecolor()) for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}
        for label, (colour, _) in styles.items():
            assert drawn[label] == colour
        assert len(set(drawn.values())) == len(drawn)  # the KV link ports too have a colour of their own
        for ax in pools.axes:
            bars = [to_hex(b.get_facecolor()) for b in ax.patches]
            assert bars == [styles[_pool_label(p)][0] for p in data["pools"]]
    finally:
        _plt().close(cost)
        _plt().close(pools)


def test_no_plan_points_are_marked_on_the_axis_not_drawn_at_zero_cost(tmp_path: Path) -> None:
    code, text, _ = cli("sweep", str(CHATBOT), "--vary", "rate_rps=5,10,400", "-f", "json")
    assert code == 0
    data = json.loads(text)["data"]
    bad = [p["value"] for p in data["points"] if p["status"] != "ok"]
    assert bad == [400.0], "400 req/s is over the chatbot's budget and power cap"
    for plot in sweep_plots(data):
        fig = figure_of(plot)
        try:
            ax = fig.axes[0]
            marks = [ln for f in fig.axes for ln in f.get_lines() if ln.get_gid() == "no-plan"]
            assert len(marks) == 1
            (mark,) = marks
            # the x sits on the x axis in axes coordinates (a place on the axis, not a y value) ...
            assert mark.get_transform() != ax.transData and list(mark.get_xdata()) == bad and list(mark.get_ydata()) == [0.0]
            assert mark.get_label().startswith("no plan (infeasible)")
            # ... and no line through the data reaches the infeasible point
            for f in fig.axes:
                for ln in f.get_lines():
                    if ln.get_gid() not in ("no-plan", "no-plan-line"):
                        assert not set(map(float, ln.get_xdata())) & set(bad), plot.chart_id
        finally:
            _plt().close(fig)


def test_pareto_series_on_the_same_points_stay_visible() -> None:
    grid = [
        {"tpot_target_ms": t, "ttft_target_ms": f, "status": "ok", "usd_per_month": 1000.0, "on_front": t == 90}
        for t in (48, 60, 75, 90)
        for f in (800, 1000)
    ]
    fig = figure_of(_pareto_plot(grid, "chat", ""))
    try:
        series = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("TPOT target")]
        assert len(series) == 4
        assert len({(ln.get_marker(), ln.get_linestyle()) for ln in series}) == 4
        sizes = [ln.get_markersize() for ln in series]
        orders = [ln.get_zorder() for ln in series]
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4  # each drawn smaller, on top
        assert orders == sorted(orders) and len(set(orders)) == 4
    finally:
        _plt().close(fig)


def test_size_report_is_deterministic(size_docs: dict[str, dict[str, Any]]) -> None:
    assert size_html(size_docs["pays"], None) == size_html(size_docs["pays"], None)
