"""planner sweep over several axes (issue 20, items 1 and 4): dotted paths into the workload, the Cartesian
product and its limit, scenario files, per-point engines, the results table (CSV, Parquet), the change summary
and the multi-axis HTML page."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Run, assert_input_error, cli

from planner.api.sweep import MAX_GRID, Vary, check_grid, parse_vary
from planner.domain import Catalog
from planner.errors import InputError
from planner.io.docpath import apply_path, parse_path, parse_value, read_path

REPO = Path(__file__).resolve().parent.parent
CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"
SUMMARIZATION = REPO / "examples" / "workloads" / "summarization.yaml"
# rate x TPOT target on the summarization workload: the configuration changes along both axes (measured
# 2026-12-02, vLLM profile: 3 distinct configurations over the 4 points) and disaggregation starts and stops paying.
GRID = ("--vary", "rate_rps=1,6", "--vary", "classes[0].slo.tpot_p99_ms=40,80")


def _doc(path: Path = CHATBOT) -> dict[str, Any]:
    from planner.io.workload import read_workload_spec

    return read_workload_spec(path).model_dump(mode="json", exclude_none=True)


@pytest.fixture(scope="module")
def grid() -> dict[str, Any]:
    code, out, err = cli("sweep", str(SUMMARIZATION), *GRID, "-f", "json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


# ------------------------------------------------------------------------------------------ dotted paths


def test_dotted_paths_by_name_index_key_and_star() -> None:
    doc = _doc()
    by_name = parse_path("classes.chat.rate_rps", doc)
    by_index = parse_path("classes[0].rate_rps", doc)
    assert by_name.steps == ("classes", "chat", "rate_rps") and by_index.steps == ("classes", 0, "rate_rps")
    assert by_name.kind == "number" and by_name.unit == "requests/s"
    assert read_path(doc, by_name) == read_path(doc, by_index) == 20.0
    slo = parse_path("classes.0.slo.tpot_p99_ms", doc)
    assert slo.unit == "ms" and read_path(doc, slo) == 60
    inventory = parse_path("constraints.max_gpus[h100-sxm]", doc)
    assert inventory.kind == "integer" and inventory.unit == "GPUs" and read_path(doc, inventory) is None
    assert parse_path("constraints.max_gpus.h100-sxm", doc).steps == inventory.steps
    gpus = parse_path("hardware.decode_gpus", doc)
    assert gpus.kind == "strings" and parse_value(gpus, "h100-sxm|a100-sxm-80gb") == ("h100-sxm", "a100-sxm-80gb")
    assert parse_path("pricing.whole_nodes", doc).kind == "boolean"
    assert parse_path("precision", doc).choices == ("bf16", "fp8", "fp4")
    assert parse_path("constraints.max_gpu_types_per_role", doc).nullable

    out = copy.deepcopy(doc)
    apply_path(out, by_name, 7.5)
    apply_path(out, inventory, 16)
    apply_path(out, parse_path("growth.per_month_frac", doc), 0.05)  # an unset optional section is created
    apply_path(out, gpus, ("h100-sxm",))
    assert out["classes"][0]["rate_rps"] == 7.5 and out["constraints"]["max_gpus"] == {"a100-sxm-80gb": 64, "h100-sxm": 16}
    assert out["growth"] == {"per_month_frac": 0.05} and out["hardware"]["decode_gpus"] == ["h100-sxm"]
    assert doc["classes"][0]["rate_rps"] == 20.0  # the document itself is left alone by apply_doc's copy

    two = {**doc, "classes": [doc["classes"][0], {**doc["classes"][0], "name": "batch"}]}
    both = copy.deepcopy(two)
    apply_path(both, parse_path("classes[*].rate_rps", two), 3.0)
    assert [c["rate_rps"] for c in both["classes"]] == [3.0, 3.0]
    one = copy.deepcopy(two)
    apply_path(one, parse_path("classes.batch.rate_rps", two), 3.0)
    assert [c["rate_rps"] for c in one["classes"]] == [20.0, 3.0]


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("classes.nosuch.rate_rps", "no class named 'nosuch'"),
        ("classes[3].rate_rps", "classes[3]: the workload has 1 element"),
        ("constraints.max_gpu", "constraints.max_gpu is not a field of the workload schema"),
        ("classes[0].slo.ttft_p98_ms", "not a field of the workload"),
        ("classes[0].slo", "a section, not a value"),
        ("classes[0].input_tokens.histogram", "cannot be swept"),
        ("classes[0].rate_rps.x", "holds a value"),
        ("calibration", "cannot be swept"),
        ("classes..rate_rps", "not a dotted path"),
    ],
)
def test_a_path_not_in_the_schema_is_an_error_naming_it(path: str, needle: str) -> None:
    with pytest.raises(InputError) as info:
        parse_path(path, _doc())
    assert needle in info.value.message, info.value.message


def test_vary_values_follow_the_field(splitwise_catalog: Catalog) -> None:
    doc = _doc()
    assert parse_vary("constraints.max_gpus.h100-sxm=8:32:4", splitwise_catalog, doc).values == (8, 16, 24, 32)
    with pytest.raises(InputError, match="not whole numbers"):
        parse_vary("constraints.max_gpus.h100-sxm=8:30:4", splitwise_catalog, doc)
    engines = parse_vary("engine=vllm,sglang,trtllm", splitwise_catalog, doc)
    assert engines.values == ("vllm", "sglang", "trtllm") and engines.kind == "string"
    gpus = parse_vary("hardware.decode_gpus=h100-sxm|a100-sxm-80gb,h100-sxm", splitwise_catalog, doc)
    assert gpus.values == (("h100-sxm", "a100-sxm-80gb"), ("h100-sxm",))
    assert parse_vary("constraints.max_gpu_types_per_role=1,null", splitwise_catalog, doc).values == (1, None)
    assert parse_vary("pricing.whole_nodes=true,false", splitwise_catalog, doc).values == (True, False)
    assert parse_vary("model=a:b:c", splitwise_catalog, doc).values == ("a:b:c",)  # text never reads as a range
    for bad in ("classes.chat.rate_rps=x", "pricing.whole_nodes=maybe", "classes.chat.rate_rps=null", "hardware.links=a||b"):
        with pytest.raises(InputError):
            parse_vary(bad, splitwise_catalog, doc)


def test_unknown_path_is_one_error_line_exit_2(run_cli: Run) -> None:
    assert_input_error(run_cli("sweep", str(CHATBOT), "--vary", "constraints.max_gpu=4"), "constraints.max_gpu")
    assert_input_error(run_cli("sweep", str(CHATBOT), "--vary", "classes.batch.rate_rps=4"), "no class named 'batch'")
    assert_input_error(run_cli("sweep", str(CHATBOT), "--vary", "speed=4"), "unknown variable 'speed'")
    assert_input_error(run_cli("sweep", str(CHATBOT)), "--vary NAME")


# ------------------------------------------------------------------------------------------ the product


def test_product_size_and_limit(run_cli: Run) -> None:
    axes = [Vary("a", tuple(float(i) for i in range(100))), Vary("b", tuple(float(i) for i in range(100)))]
    assert check_grid(axes) == MAX_GRID == 10_000
    lines = assert_input_error(
        run_cli("sweep", str(CHATBOT), "--vary", "rate_rps=1:100:100", "--vary", "ttft_p99_ms=500:1500:101"),
        "100 x 101 = 10,100 points; at most 10,000",
    )
    assert lines[0].startswith("error: sweep:")
    assert_input_error(run_cli("sweep", str(CHATBOT), "--vary", "rate_rps=1", "--vary", "rate_rps=2"), "given twice")


def test_grid_order_values_and_an_invalid_point_is_an_error_row(run_cli: Run) -> None:
    code, out, err = run_cli(
        "sweep", str(CHATBOT), "--vary", "constraints.headroom_frac=0.1,1.5", "--vary", "classes.chat.rate_rps=4", "-f", "json"
    )
    assert code == 0, err
    doc = json.loads(out)
    data = doc["data"]
    assert doc["inputs"]["num_points"] == data["num_points"] == 2
    assert [a["variable"] for a in data["axes"]] == ["constraints.headroom_frac", "classes.chat.rate_rps"]
    assert [p["values"] for p in data["points"]] == [
        {"constraints.headroom_frac": 0.1, "classes.chat.rate_rps": 4.0},
        {"constraints.headroom_frac": 1.5, "classes.chat.rate_rps": 4.0},
    ]
    ok, bad = data["points"]
    assert ok["status"] == "ok" and bad["status"] == "error"
    assert "constraints.headroom_frac" in bad["message"] and "usd_per_month" not in bad
    assert "variable" not in data and "value" not in ok  # the one-axis keys are for one axis only


# ------------------------------------------------------------------------------------------ agreement with planner size


def _size(run_cli: Run, doc: dict[str, Any], tmp_path: Path, name: str) -> dict[str, Any]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out, err = run_cli("size", str(path), "-f", "json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)["data"]
    return result


def _plan_json(pools: list[dict[str, Any]], keys: list[str]) -> str:
    return json.dumps([{k: p.get(k) for k in keys} for p in pools], sort_keys=True)


@pytest.mark.slow
def test_grid_points_equal_planner_size_of_the_changed_document(grid: dict[str, Any], run_cli: Run, tmp_path: Path) -> None:
    """Points 1 and 4, changed by hand (not through the sweep's code), sized by planner size."""
    from planner.api import engine_catalog, load_workload_spec, resolve_workload
    from planner.api.sweep import make_tasks

    catalog = engine_catalog()
    base = yaml.safe_load(SUMMARIZATION.read_text())
    hand = {0: (1.0, 40.0), 3: (6.0, 80.0)}  # rate_rps (one class: its rate), TPOT target
    for index, (rate, tpot) in hand.items():
        doc = copy.deepcopy(base)
        doc["classes"][0]["rate_rps"] = rate
        doc["classes"][0]["slo"]["tpot_p99_ms"] = tpot
        point = grid["data"]["points"][index]
        assert point["values"] == {"rate_rps": rate, "classes[0].slo.tpot_p99_ms": tpot}
        size = _size(run_cli, doc, tmp_path, f"p{index}")
        path = tmp_path / f"p{index}.yaml"
        hand_workload = resolve_workload(load_workload_spec(path), catalog, str(path))
        (task,) = make_tasks(_doc(SUMMARIZATION), catalog, [[("rate_rps", rate), ("classes[0].slo.tpot_p99_ms", tpot)]])
        assert task.workload == hand_workload  # the sweep's document resolves to the hand-changed one
        keys = sorted(point["pools"][0])
        assert _plan_json(point["pools"], keys) == _plan_json(size["pools"], keys)  # byte-equal plan
        assert point["usd_per_month"] == size["cost"]["usd_per_month"]
        assert point["num_gpus"] == size["num_gpus"] and point["savings_frac"] == size["savings_frac"]


@pytest.mark.slow
def test_engine_axis_sizes_each_point_under_its_engine(run_cli: Run, tmp_path: Path) -> None:
    # at 15 req/s the two engines' plans differ (at 6 req/s, since the engines' KV-pool rules, they coincide)
    code, out, err = run_cli("sweep", str(CHATBOT), "--vary", "engine=vllm,sglang", "--vary", "rate_rps=15", "-f", "json")
    assert code == 0, err
    points = json.loads(out)["data"]["points"]
    assert [p["engine"].split("@")[0] for p in points] == ["vllm", "sglang"]
    doc = yaml.safe_load(CHATBOT.read_text())
    doc["classes"][0]["rate_rps"] = 15
    doc["engine"] = "sglang"
    size = _size(run_cli, doc, tmp_path, "sglang")
    assert points[1]["usd_per_month"] == size["cost"]["usd_per_month"]
    assert points[0]["usd_per_month"] != points[1]["usd_per_month"]
    code, csv_text, _ = run_cli("sweep", str(CHATBOT), "--vary", "engine=vllm,sglang", "--vary", "rate_rps=6", "-f", "csv")
    header, *rows = csv_text.splitlines()
    assert header.startswith("point,engine,rate_rps,status,") and rows[1].split(",")[1].startswith("sglang@")
    assert_input_error(
        run_cli("sweep", str(CHATBOT), "--vary", "engine=vllm,sglang", "--engine", "vllm"), "--engine and a swept engine"
    )


# ------------------------------------------------------------------------------------------ scenarios


def test_scenarios_yaml_and_csv_with_a_vary_axis(run_cli: Run, tmp_path: Path) -> None:
    sc_yaml = tmp_path / "sc.yaml"
    sc_yaml.write_text(
        "scenarios:\n"
        "  - {name: today, classes.chat.rate_rps: 4}\n"
        "  - name: h100\n"
        "    classes.chat.rate_rps: 4\n"
        "    hardware.decode_gpus: [h100-sxm]\n"
    )
    sc_csv = tmp_path / "sc.csv"
    sc_csv.write_text("name,classes.chat.rate_rps,hardware.decode_gpus\ntoday,4,\nh100,4,h100-sxm\n")
    results = []
    for path in (sc_yaml, sc_csv):
        code, out, err = run_cli("sweep", str(CHATBOT), "--scenarios", str(path), "-f", "json")
        assert code == 0, err
        doc = json.loads(out)
        results.append(doc["data"]["points"])
        assert doc["inputs"]["scenarios"]["count"] == 2 and doc["data"]["axes"][0]["variable"] == "scenario"
    yaml_points, csv_points = results
    strip = ("index",)
    assert [{k: v for k, v in p.items() if k not in strip} for p in yaml_points] == [
        {k: v for k, v in p.items() if k not in strip} for p in csv_points
    ]
    today, h100 = yaml_points
    assert today["settings"] == {"classes.chat.rate_rps": 4.0}
    assert h100["settings"] == {"classes.chat.rate_rps": 4.0, "hardware.decode_gpus": ["h100-sxm"]}
    assert {q["gpu"] for q in h100["pools"] if q["role"] == "decode"} == {"h100-sxm"}
    code, csv_text, _ = run_cli("sweep", str(CHATBOT), "--scenarios", str(sc_csv), "-f", "csv")
    header, first, second = csv_text.splitlines()
    assert header.startswith("point,scenario,classes.chat.rate_rps,hardware.decode_gpus,status,")
    assert first.startswith("1,today,4.0,,ok,") and second.startswith("2,h100,4.0,h100-sxm,ok,")


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.csv", "name,classes.chat.rate_rps\nok,4\nbad,ten\n", "bad.csv:3: scenario bad: classes.chat.rate_rps: 'ten'"),
        ("bad.csv", "name,classes.chat.rate_rps\nok,4\nok,5\n", "bad.csv:3: scenario 'ok' is named twice (first at line 2)"),
        ("bad.csv", "name,nosuch.field\nok,4\n", "bad.csv:2: scenario ok: nosuch.field"),
        ("bad.csv", "rate_rps\n4\n", "bad.csv:1: the header needs a name column"),
        ("bad.csv", "name,rate_rps\nok,4,5\n", "bad.csv:2: 3 cells; the header has 2"),
        ("bad.yaml", "- {name: a, rate_rps: 4}\n- {name: b,\n   rate_rps: fast}\n", "bad.yaml:2: scenario b: rate_rps"),
        ("bad.yaml", "scenarios:\n  - {name: a}\n  - [1, 2]\n", "bad.yaml:3: a scenario is a mapping"),
        ("bad.yaml", "- {rate_rps: 4}\n", "bad.yaml:1: a scenario needs a name"),
        ("bad.txt", "x", "use a .yaml, .yml or .csv file"),
    ],
)
def test_a_bad_scenario_row_names_its_line(run_cli: Run, tmp_path: Path, name: str, text: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert_input_error(run_cli("sweep", str(CHATBOT), "--scenarios", str(path)), needle)


def test_a_variable_in_the_file_and_in_vary_is_refused(run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "sc.csv"
    path.write_text("name,rate_rps\na,4\n")
    assert_input_error(
        run_cli("sweep", str(CHATBOT), "--scenarios", str(path), "--vary", "rate_rps=2"), "also set by the scenarios file"
    )


# ------------------------------------------------------------------------------------------ the change summary


def test_change_summary_where_the_configuration_changes(grid: dict[str, Any]) -> None:
    data = grid["data"]
    points, summary = data["points"], data["summary"]

    def shape(p: dict[str, Any]) -> tuple[tuple[str, str, int], ...]:
        return tuple(sorted((q["role"], q["gpu"], q["tp"]) for q in p["pools"]))

    # Every configuration id stands for one shape, and distinct ids for distinct shapes.
    by_id: dict[str, set[Any]] = {}
    for p in points:
        assert p["status"] == "ok"
        by_id.setdefault(p["configuration_id"], set()).add(shape(p))
    assert all(len(s) == 1 for s in by_id.values())
    assert len({next(iter(s)) for s in by_id.values()}) == len(by_id) == summary["num_configurations"]
    # The grid is known to change (3 configurations over 4 points): one configuration covers two points.
    assert summary["num_configurations"] == 3
    assert sorted(c["num_points"] for c in summary["configurations"]) == [1, 1, 2]
    for c in summary["configurations"]:
        members = [p for p in points if p["configuration_id"] == c["id"]]
        assert c["points"] == [p["index"] for p in members]
        assert c["values"] == {k: sorted({p["values"][k] for p in members}) for k in c["values"]}

    # Along each axis with the other held fixed: a change exactly where neighbouring points' ids differ.
    at = {(p["values"]["rate_rps"], p["values"]["classes[0].slo.tpot_p99_ms"]): p for p in points}
    rates, tpots = (1.0, 6.0), (40.0, 80.0)
    want_rate = [
        {"between": [1.0, 6.0], "at": {"classes[0].slo.tpot_p99_ms": t}, "from": at[1.0, t]["configuration_id"],
         "to": at[6.0, t]["configuration_id"]}
        for t in tpots
        if at[1.0, t]["configuration_id"] != at[6.0, t]["configuration_id"]
    ]  # fmt: skip
    want_tpot = [
        {"between": [40.0, 80.0], "at": {"rate_rps": r}, "from": at[r, 40.0]["configuration_id"],
         "to": at[r, 80.0]["configuration_id"]}
        for r in rates
        if at[r, 40.0]["configuration_id"] != at[r, 80.0]["configuration_id"]
    ]  # fmt: skip
    rate_axis, tpot_axis = summary["axes"]
    assert rate_axis["configuration_changes"] == want_rate and tpot_axis["configuration_changes"] == want_tpot
    assert want_rate and want_tpot  # it changes along both axes
    # Disaggregation: starts or stops paying where the savings change sign between neighbours.
    for axis, pairs in ((rate_axis, [((1.0, t), (6.0, t)) for t in tpots]), (tpot_axis, [((r, 40.0), (r, 80.0)) for r in rates])):
        want = [
            "starts" if at[b]["savings_frac"] > 0 else "stops"
            for a, b in pairs
            if (at[a]["savings_frac"] > 0) != (at[b]["savings_frac"] > 0)
        ]
        assert [x["kind"] for x in axis["disaggregation_crossings"]] == want
    kinds = {x["kind"] for axis in summary["axes"] for x in axis["disaggregation_crossings"]}
    assert kinds == {"starts", "stops"}


def test_table_and_markdown_show_every_axis_and_the_summary(grid: dict[str, Any]) -> None:
    from planner.cli._common import render_rich
    from planner.report.sweep import grid_markdown, grid_table

    data = grid["data"]
    text = render_rich(grid_table(data))
    assert "rate_rps" in text and "tpot_p99_ms" in text and "configurations: 3 distinct over 4 of 4 points" in text
    assert "along rate_rps: disaggregation stops paying between 1 and 6 at classes[0].slo.tpot_p99_ms=40" in text
    md = grid_markdown(data, "engine: x")
    rows = [line for line in md.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 4 and rows[0].startswith("| 1 | 1 | 40 | ")
    assert "- along classes[0].slo.tpot_p99_ms:" in md


# ------------------------------------------------------------------------------------------ CSV and Parquet


@pytest.mark.slow
def test_parquet_round_trip_and_byte_identity(grid: dict[str, Any], run_cli: Run, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    code, out, err = run_cli("sweep", str(SUMMARIZATION), *GRID, "-f", "parquet", "-o", str(a))
    assert code == 0 and out == "", err
    proc = subprocess.run(  # a second process: nothing of the first run (or the clock) is in the bytes
        [sys.executable, "-m", "planner", "sweep", str(SUMMARIZATION), *GRID, "-j", "1", "-f", "parquet", "-o", str(b)],
        capture_output=True,
        check=False,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert a.read_bytes() == b.read_bytes()
    table = pq.read_table(io.BytesIO(a.read_bytes()))
    rows = table.to_pylist()
    points = grid["data"]["points"]
    assert [r["point"] for r in rows] == [1, 2, 3, 4]
    assert [(r["rate_rps"], r["classes[0].slo.tpot_p99_ms"]) for r in rows] == [
        (p["values"]["rate_rps"], p["values"]["classes[0].slo.tpot_p99_ms"]) for p in points
    ]
    assert [r["usd_per_month"] for r in rows] == [p["usd_per_month"] for p in points]
    assert [r["configuration_id"] for r in rows] == [p["configuration_id"] for p in points]
    assert str(table.schema.field("num_gpus").type) == "int64" and str(table.schema.field("disaggregated").type) == "bool"
    meta = table.schema.metadata
    assert meta[b"command"] == b"sweep" and meta[b"schema_version"] == b"1"
    code, csv_text, _ = run_cli("sweep", str(SUMMARIZATION), *GRID, "-f", "csv")
    assert csv_text.splitlines()[0].split(",") == table.column_names
    assert_input_error(run_cli("sweep", str(SUMMARIZATION), *GRID, "-f", "parquet"), "-o FILE")


# ------------------------------------------------------------------------------------------ HTML


def test_html_of_several_axes(grid: dict[str, Any], tmp_path: Path) -> None:
    from planner.report.html import grid_plots, sweep_html

    page = sweep_html(grid)
    assert 'id="chart-sweep-grid-cost"' in page and "one line per value of classes[0].slo.tpot_p99_ms" in page
    assert page.count("<tr>") == 1 + len(grid["data"]["points"])
    assert "Where the configuration changes" in page
    (plot,) = grid_plots(grid["data"])
    from planner.report.html import figure_of

    fig = figure_of(plot)
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("classes")]
    assert [ln.get_label() for ln in lines] == ["classes[0].slo.tpot_p99_ms = 40", "classes[0].slo.tpot_p99_ms = 80"]
    assert [list(ln.get_xdata()) for ln in lines] == [[1.0, 6.0], [1.0, 6.0]]
    # Three axes (or a string first axis): no chart, the table and the summary only.
    three = copy.deepcopy(grid)
    three["data"]["axes"].append({"variable": "engine", "unit": "", "kind": "string", "values": ["vllm"]})
    for p in three["data"]["points"]:
        p["values"]["engine"] = "vllm"
    page3 = sweep_html(three)
    assert "chart-sweep-grid-cost" not in page3 and "No chart" in page3 and page3.count("<tr>") == 5


def test_report_command_renders_a_saved_multi_axis_sweep(grid: dict[str, Any], run_cli: Run, tmp_path: Path) -> None:
    saved = tmp_path / "grid.json"
    saved.write_text(json.dumps(grid))
    out = tmp_path / "grid.html"
    code, _, err = run_cli("report", str(saved), "--html", str(out))
    assert code == 0, err
    assert "chart-sweep-grid-cost" in out.read_text()


def test_one_axis_of_text_or_null_values_renders_as_a_grid(run_cli: Run, tmp_path: Path) -> None:
    """One --vary axis keeps the one-axis JSON keys; values that are not numbers get the grid table and page."""
    from planner.cli._common import render_rich
    from planner.report.html import sweep_html
    from planner.report.sweep import grid_table, one_axis

    code, out, err = run_cli("sweep", str(CHATBOT), "--vary", "constraints.max_gpu_types_per_role=1,null", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    data = doc["data"]
    assert data["variable"] == "constraints.max_gpu_types_per_role" and [p["value"] for p in data["points"]] == [1, None]
    assert doc["inputs"]["vary"]["values"] == [1, None] and not one_axis(data)
    text = render_rich(grid_table(data))
    assert "null" in text and "configurations: 1 distinct over 2 of 2 points" in text
    assert "No chart" in sweep_html(doc)
    code, table, err = run_cli("sweep", str(CHATBOT), "--vary", "pricing.whole_nodes=false,true", "-j", "1")
    assert code == 0 and "false" in table and "true" in table, err


def test_a_growth_axis_warns_that_it_changes_nothing(run_cli: Run) -> None:
    code, out, err = run_cli(
        "sweep", str(CHATBOT), "--vary", "growth.months=6,12", "--vary", "growth.per_month_frac=0.05", "-f", "json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["warnings"]) == 2 and all("only the --schedule output" in w for w in doc["warnings"])
    assert err.count("warning: growth.") == 2
    a, b = doc["data"]["points"]
    assert a["usd_per_month"] == b["usd_per_month"] and a["configuration_id"] == b["configuration_id"]
