"""planner sweep: parsing --vary, agreement with separate planner size runs, outputs, determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Run, assert_input_error

from planner import api
from planner.api.sweep import apply_catalog, parse_vary, sweep
from planner.domain import Catalog
from planner.errors import InputError
from planner.report.sweep import sparkline

# These tests check the core's mechanics on figures worked out under the 2023 Splitwise engine
# profile; they pin it (the default engine's figures are in test_engine_profiles.py and the README).
ENGINE = "splitwise"


@pytest.fixture(scope="session")
def catalog(splitwise_catalog: Catalog) -> Catalog:
    return splitwise_catalog


REPO = Path(__file__).resolve().parent.parent
CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CHATBOT.read_text())
    return doc


def test_parse_vary_range_and_list(catalog: Catalog) -> None:
    v = parse_vary("rate_rps=1:200:20", catalog)
    assert v.name == "rate_rps" and v.unit == "requests/s"
    assert len(v.values) == 20 and v.values[0] == 1 and v.values[-1] == 200
    assert parse_vary("ttft_p99_ms=500,1000, 2000", catalog).values == (500, 1000, 2000)
    assert parse_vary("price:H100_SXM=1:4:4", catalog).name == "price:h100-sxm"
    assert parse_vary("isl=100:100:1", catalog).values == (100,)


@pytest.mark.parametrize(
    "text",
    [
        "rate_rps",
        "rate=1:2:3",
        "rate_rps=a:2:3",
        "rate_rps=1:2:x",
        "rate_rps=1:2:0",
        "rate_rps=0,1",
        "rate_rps=1:2",
        "price:nope=1,2",
        "price=1,2",
        "isl=-5,3",
        "tpot_p99_ms=nan",
    ],
)
def test_parse_vary_rejects(text: str, catalog: Catalog) -> None:
    with pytest.raises(InputError):
        parse_vary(text, catalog)


@pytest.mark.parametrize("arg", ["rate=1:2:3", "rate_rps=1:2:0", "price:nope=1,2"])
def test_bad_vary_is_one_error_line_exit_2(arg: str, run_cli: Run) -> None:
    assert_input_error(run_cli("sweep", str(CHATBOT), "--vary", arg))


def _size_json(run_cli: Run, doc: dict[str, Any], tmp_path: Path, name: str) -> dict[str, Any]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out, err = run_cli("size", str(path), "-f", "json")
    if code == 3:
        return {"status": "infeasible"}
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def _same(point: dict[str, Any], res: dict[str, Any]) -> None:
    if res["status"] == "infeasible":
        assert point["status"] == "infeasible"
        return
    assert point["status"] == "ok"
    d = res["data"]
    assert point["usd_per_month"] == d["cost"]["usd_per_month"]
    assert point["num_gpus"] == d["num_gpus"]
    assert point["savings_frac"] == d["savings_frac"]
    assert [(p["role"], p["gpu"], p["tp"], p["replicas"]) for p in point["pools"]] == [
        (p["role"], p["gpu"], p["tp"], p["replicas"]) for p in d["pools"]
    ]


@pytest.mark.slow
def test_rate_and_target_sweeps_agree_with_planner_size(run_cli: Run, tmp_path: Path) -> None:
    code, out, err = run_cli("sweep", str(CHATBOT), "--vary", "rate_rps=2,12,30", "-f", "json")
    assert code == 0, err
    points = json.loads(out)["data"]["points"]
    assert [p["status"] for p in points] == ["ok", "ok", "infeasible"]  # 30 rps is over the budget
    for p in points:
        doc = _doc()
        doc["classes"][0]["rate_rps"] = p["value"]
        _same(p, _size_json(run_cli, doc, tmp_path, f"rate{p['value']}"))
    code, out, err = run_cli("sweep", str(CHATBOT), "--vary", "tpot_p99_ms=50,90", "-f", "json")
    assert code == 0, err
    for p in json.loads(out)["data"]["points"]:
        doc = _doc()
        doc["classes"][0]["slo"]["tpot_p99_ms"] = p["value"]
        _same(p, _size_json(run_cli, doc, tmp_path, f"tpot{p['value']}"))


@pytest.mark.slow
def test_isl_sweep_scales_the_input_distribution(run_cli: Run, tmp_path: Path) -> None:
    code, out, err = run_cli("sweep", str(CHATBOT), "--vary", "isl=1000", "-f", "json")
    assert code == 0, err
    (p,) = json.loads(out)["data"]["points"]
    doc = _doc()
    doc["classes"][0]["input_tokens"] = {"mean": 1000, "p50": 750, "p90": 2000, "p99": 3500}
    _same(p, _size_json(run_cli, doc, tmp_path, "isl"))


def test_price_sweep_agrees_with_a_repriced_catalog(catalog: Catalog) -> None:
    v = parse_vary("price:h100-sxm=2.0,5.0", catalog)
    data = sweep(_doc(), catalog, v, jobs=1)
    wl = api.resolve_workload(api.load_workload_spec(CHATBOT), catalog)
    for p in data["points"]:
        r = api.size(wl, apply_catalog(catalog, v.name, p["value"]))
        assert p["usd_per_month"] == r.plan.evaluation.usd_per_month
        assert p["savings_frac"] == r.savings_frac
    assert data["points"][0]["usd_per_month"] < data["points"][1]["usd_per_month"]


@pytest.mark.slow
def test_parallel_and_serial_sweeps_are_identical(catalog: Catalog) -> None:
    v = parse_vary("rate_rps=1:25:6", catalog)
    serial = sweep(_doc(), catalog, v, jobs=1)
    parallel = sweep(_doc(), catalog, v, jobs=2)
    assert json.dumps(serial, sort_keys=True) == json.dumps(parallel, sort_keys=True)


def test_marks_configuration_changes_and_where_disaggregation_starts_paying(run_cli: Run) -> None:
    code, out, err = run_cli("sweep", str(CHATBOT), "--vary", "rate_rps=1:20:6", "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["disaggregation_crossings"] == [{"kind": "starts", "between": [1.0, 4.8]}]
    assert data["points"][0]["savings_frac"] < 0 < data["points"][1]["savings_frac"]
    assert data["configuration_changes"]
    code, table, _ = run_cli("sweep", str(CHATBOT), "--vary", "rate_rps=1:20:6")
    assert code == 0
    assert "disaggregation starts paying between rate_rps = 1 and 4.8 requests/s" in table
    assert any(ch in table for ch in "▁▂▃▄▅▆▇█") and "*" in table and "%" in table
    code, csv_text, _ = run_cli("sweep", str(CHATBOT), "--vary", "rate_rps=1:20:6", "-f", "csv")
    lines = csv_text.splitlines()
    assert lines[0].startswith("point,rate_rps,status,usd_per_month,usd_per_hour,num_gpus,configuration_id,configuration,")
    assert len(lines) == 7


@pytest.mark.slow
def test_sweep_json_is_deterministic(run_cli: Run) -> None:
    args = ("sweep", str(CHATBOT), "--vary", "ttft_p99_ms=900,1200", "-f", "json")
    assert run_cli(*args)[1] == run_cli(*args, "--jobs", "1")[1]


def test_sparkline() -> None:
    assert sparkline([1, 2, None, 8]) == "▁▂ █"
    assert sparkline([3, 3]) == "▅▅"
    assert sparkline([None]) == " "
