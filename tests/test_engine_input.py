"""The serving engine as an input everywhere (``--engine``, the workload's and the proposal's
``engine:``) and named in every output (``inputs.engine``, the table line, the CSV column, the HTML)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Run, assert_input_error

from planner import api
from planner.domain import Catalog

ROOT = Path(__file__).resolve().parent.parent
CHATBOT = ROOT / "examples" / "workloads" / "chatbot.yaml"
DECODE = ["estimate", "decode", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--tp", "4", "--batch", "64", "--context", "2048"]
PREFILL = ["estimate", "prefill", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--tp", "4", "--tokens", "2000"]
# fmt: off
FLAGS = ["size", "--model", "llama-3.1-70b", "--rate-rps", "10", "--isl", "2000", "--osl", "300",
         "--ttft-p99-ms", "1000", "--tpot-p99-ms", "60", "--prefill-gpus", "h100-sxm", "--decode-gpus", "h100-sxm"]
# fmt: on
ENGINE_KEYS = {"id", "name", "version"}


def _json(run_cli: Run, *args: str) -> dict[str, Any]:
    code, out, err = run_cli(*args, "-f", "json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _workload(tmp_path: Path, engine: str | None, name: str = "wl.yaml") -> Path:
    doc = yaml.safe_load(CHATBOT.read_text())
    if engine is not None:
        doc["engine"] = engine
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# ------------------------------------------------------------------------------ the engine matters


def test_engine_changes_the_estimate(catalog: Catalog) -> None:
    args: dict[str, Any] = {"model": "llama-3.1-70b", "gpu": "h100-sxm", "tp": 4, "batch": 64, "context": 2048}
    splitwise = api.estimate("decode", catalog=catalog, engine="splitwise", **args)
    pytorch = api.estimate("decode", catalog=catalog, engine="pytorch", **args)
    default = api.estimate("decode", catalog=catalog, **args)
    assert splitwise.engine.id == "splitwise" and pytorch.engine.id == "pytorch" and default.engine.id == catalog.default_engine
    assert splitwise.step.latency_s != pytest.approx(pytorch.step.latency_s, rel=0.01)
    assert api.estimate("decode", catalog=catalog, engine="pytorch@2.11.0", **args).step == pytorch.step


def test_engine_changes_the_cli_estimate(run_cli: Run) -> None:
    a = _json(run_cli, *DECODE, "--engine", "splitwise")
    b = _json(run_cli, *DECODE, "--engine", "pytorch")
    assert a["inputs"]["engine"] == {"id": "splitwise", "name": a["inputs"]["engine"]["name"], "version": "2023"}
    assert b["inputs"]["engine"]["id"] == "pytorch"
    assert a["data"]["latency_ms"] != pytest.approx(b["data"]["latency_ms"], rel=0.01)


# --------------------------------------------------------------------- every output names the engine


@pytest.mark.slow
def test_every_envelope_names_the_engine(run_cli: Run, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    assert run_cli("size", str(CHATBOT), "-f", "yaml", "-o", str(plan))[0] == 0
    docs = {
        "estimate decode": _json(run_cli, *DECODE),
        "estimate prefill": _json(run_cli, *PREFILL, "--engine", "sglang"),
        "size file": _json(run_cli, "size", str(CHATBOT), "--engine", "trtllm"),
        "size flags": _json(run_cli, *FLAGS, "--engine", "sglang"),
        "check": _json(run_cli, "check", str(plan)),
        "simulate": _json(run_cli, "simulate", str(plan), "-n", "1000"),
        "sweep": _json(run_cli, "sweep", str(CHATBOT), "--vary", "rate_rps=10,20", "-j", "1", "--engine", "splitwise"),
    }
    want = {"size file": "trtllm", "size flags": "sglang", "estimate prefill": "sglang", "sweep": "splitwise"}
    for what, doc in docs.items():
        engine = doc["inputs"]["engine"]
        assert set(engine) == ENGINE_KEYS, what
        assert engine["id"] == want.get(what, "vllm"), what
        assert engine["version"], what


def test_table_prints_one_engine_line(run_cli: Run, tmp_path: Path) -> None:
    for args in (DECODE, ["size", str(CHATBOT)]):
        code, out, err = run_cli(*args, "--engine", "vllm")
        assert code == 0, err
        assert [line for line in out.splitlines() if line.startswith("engine: ")] == ["engine: vLLM 0.12.0 (vllm@0.12.0)"]
    plan = tmp_path / "plan.yaml"
    assert run_cli("size", str(CHATBOT), "--engine", "sglang", "-f", "yaml", "-o", str(plan))[0] == 0
    code, out, _ = run_cli("check", str(plan))
    assert code == 0
    assert out.splitlines()[1] == "engine: SGLang 0.5.6 (sglang@0.5.6)"


def test_csv_carries_an_engine_column(run_cli: Run) -> None:
    code, out, err = run_cli(*FLAGS, "--engine", "pytorch", "-f", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and out.splitlines()[0].endswith(",engine")
    assert {r["engine"] for r in rows} == {"pytorch@2.11.0"}
    code, out, _ = run_cli(*DECODE, "-f", "csv")
    assert code == 0
    assert next(csv.DictReader(io.StringIO(out)))["engine"] == "vllm@0.12.0"


@pytest.mark.slow
def test_html_report_names_the_engine(run_cli: Run, tmp_path: Path) -> None:
    page = tmp_path / "plan.html"
    code, _, err = run_cli(*FLAGS, "--engine", "splitwise", "--html", str(page))
    assert code == 0, err
    assert "<td>engine</td><td>Splitwise (2023 engine) 2023 (splitwise@2023)</td>" in page.read_text()


@pytest.mark.slow
def test_transferred_factors_are_a_warning(run_cli: Run, catalog: Catalog) -> None:
    # h100-pcie has no splitwise measurements: its factors are the H100 SXM's
    assert catalog.engine_efficiency["splitwise"]["h100-pcie"].transferred_from == "h100-sxm"
    args = [a if a != "h100-sxm" else "h100-pcie" for a in FLAGS]
    doc = _json(run_cli, *args, "--engine", "splitwise")
    assert any(w.startswith("h100-pcie has no splitwise measurements of its own") for w in doc["warnings"]), doc["warnings"]
    code, _, err = run_cli(*args, "--engine", "splitwise")
    assert code == 0 and "warning: h100-pcie has no splitwise measurements" in err


# ---------------------------------------------------------------------- engine: in the documents


def test_workload_engine_is_honoured_and_overridden(run_cli: Run, tmp_path: Path) -> None:
    path = _workload(tmp_path, "pytorch")
    doc = _json(run_cli, "size", str(path))
    assert doc["inputs"]["engine"]["id"] == "pytorch"
    assert doc["inputs"]["workload"]["engine"] == "pytorch"
    over = _json(run_cli, "size", str(path), "--engine", "splitwise")
    assert over["inputs"]["engine"]["id"] == "splitwise"
    assert over["data"]["cost"]["usd_per_hour"] != pytest.approx(doc["data"]["cost"]["usd_per_hour"], rel=1e-6)
    sweep = _json(run_cli, "sweep", str(path), "--vary", "rate_rps=20", "-j", "1")
    assert sweep["inputs"]["engine"]["id"] == "pytorch"


def test_proposal_engine_is_honoured_and_overridden(run_cli: Run, tmp_path: Path) -> None:
    _workload(tmp_path, "sglang")
    proposal = {
        "workload": "wl.yaml",
        "pools": [
            {"role": "prefill", "gpu": "h100-sxm", "tp": 8, "replicas": 7, "link": "ib-ndr-400"},
            {"role": "decode", "gpu": "h100-sxm", "tp": 4, "replicas": 10},
        ],
    }
    path = tmp_path / "proposal.yaml"
    path.write_text(yaml.safe_dump(proposal))
    assert _json(run_cli, "check", str(path), "--no-fail")["inputs"]["engine"]["id"] == "sglang"  # the workload's
    path.write_text(yaml.safe_dump({**proposal, "engine": "splitwise@2023"}))
    assert _json(run_cli, "check", str(path), "--no-fail")["inputs"]["engine"]["id"] == "splitwise"  # the proposal's
    assert _json(run_cli, "simulate", str(path), "-n", "1000")["inputs"]["engine"]["id"] == "splitwise"
    over = _json(run_cli, "check", str(path), "--no-fail", "--engine", "pytorch")
    assert over["inputs"]["engine"]["id"] == "pytorch"


@pytest.mark.slow
def test_plan_round_trip_keeps_the_engine(run_cli: Run, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    assert run_cli("size", str(CHATBOT), "--engine", "pytorch", "-f", "yaml", "-o", str(plan))[0] == 0
    assert yaml.safe_load(plan.read_text())["inputs"]["engine"]["id"] == "pytorch"
    doc = _json(run_cli, "check", str(plan))
    assert doc["inputs"]["engine"]["id"] == "pytorch"
    assert doc["data"]["findings"] == []  # EFF001: the optimal plan under pytorch is the plan itself
    assert doc["data"]["optimal"]["usd_per_hour"] == pytest.approx(doc["data"]["evaluated"]["usd_per_hour"], rel=1e-9)
    assert _json(run_cli, "simulate", str(plan), "-n", "1000")["inputs"]["engine"]["id"] == "pytorch"
    # the same plan checked under another engine is a different fleet for it
    other = _json(run_cli, "check", str(plan), "--no-fail", "--engine", "splitwise")
    assert other["inputs"]["engine"]["id"] == "splitwise"
    assert other["data"]["findings"] != []


# --------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ([*DECODE, "--engine", "vlm"], ["'vlm'", "vllm"]),
        ([*DECODE, "--engine", "vllm@0.9"], ["'0.9'", "0.12.0"]),
        (["size", str(CHATBOT), "--engine", "sglng"], ["'sglng'", "sglang"]),
        ([*FLAGS, "--engine", "trtllm@9"], ["'9'", "1.0.0"]),
        (["size", str(CHATBOT), "--engine", "vllm,nope"], ["'nope'"]),
    ],
)
def test_unknown_engine_or_version(run_cli: Run, args: list[str], needles: list[str]) -> None:
    assert_input_error(run_cli(*args), *needles)


def test_unknown_engine_in_a_document(run_cli: Run, tmp_path: Path) -> None:
    path = _workload(tmp_path, "sglan")
    assert_input_error(run_cli("size", str(path)), f"{path}: engine", "sglang")
    assert run_cli("size", str(path), "--engine", "sglang", "-f", "json")[0] == 0  # the flag wins
    bad = _workload(tmp_path, "vllm, sglang", "list.yaml")  # a document names one engine
    assert_input_error(run_cli("size", str(bad)), "engine")


# --------------------------------------------------------------------------------------- catalog


def test_catalog_list_engines(run_cli: Run) -> None:
    doc = _json(run_cli, "catalog", "list", "engines")
    rows = {r["id"]: r for r in doc["data"]["engines"]}
    assert {"vllm", "sglang", "trtllm", "pytorch", "splitwise"} <= set(rows)
    assert [i for i, r in rows.items() if r["default"]] == ["vllm"]
    assert set(rows["vllm"]) >= {"name", "version", "max_num_seqs", "max_num_batched_tokens", "chunked_prefill", "decode_first"}
    code, out, err = run_cli("catalog", "list", "engines")
    assert code == 0, err
    assert "TensorRT-LLM" in out and "sglang" in out


def test_catalog_show_engine(run_cli: Run, catalog: Catalog) -> None:
    data = _json(run_cli, "catalog", "show", "vllm")["data"]
    assert data["kind"] == "engines" and data["default"] is True
    assert data["entry"]["version"] == catalog.engines["vllm"].version
    assert data["entry"]["note"]
    assert set(data["entry"]) - {"id", "name", "note"} == set(data["sources"])
    assert all(s["id"] in catalog.sources for s in data["sources"].values())
    assert set(data["efficiency"]) == set(catalog.gpus)
    for gpu, sets in data["efficiency"].items():
        eff = catalog.engine_efficiency["vllm"][gpu]
        assert sets["bf16"]["status"] == ("transferred" if eff.transferred_from else "fitted")
        assert sets["bf16"]["fitted_on"] == eff.fitted_on
        assert (sets["fp8"] is None) == (eff.fp8 is None)
    code, out, err = run_cli("catalog", "show", "vllm")
    assert code == 0, err
    assert "note: " in out
    a100 = next(line for line in out.splitlines() if "a100-pcie-80gb" in line and "transferred" in line)
    assert "transferred from" in a100  # the donor's name may fold onto the cell's next line
    assert (sets := data["efficiency"]["b200"])["fp4"] is not None and sets["fp4"]["status"] == "fitted"
    assert data["uncertainty"]["ttft_log_sigma"] == catalog.engine_uncertainty["vllm"].ttft_log_sigma
    assert "measured spread (one-sigma of ln predicted/measured, 114 training rows)" in out
    assert_input_error(run_cli("catalog", "show", "sglangg"), "sglang")


def test_catalog_validate_counts_engines(run_cli: Run) -> None:
    assert _json(run_cli, "catalog", "validate")["data"]["counts"]["engines"] >= 5


# ------------------------------------------------------------------------ several engines at once


@pytest.mark.slow
def test_size_under_several_engines(run_cli: Run) -> None:
    doc = _json(run_cli, "size", str(CHATBOT), "--engine", "pytorch,splitwise")
    rows = doc["data"]["engines"]
    assert [r["engine"]["id"] for r in rows] == ["pytorch", "splitwise"]
    assert all(r["feasible"] and r["num_gpus"] > 0 and r["usd_per_month"] > 0 for r in rows)
    cheapest = min(rows, key=lambda r: r["usd_per_month"])
    assert [r["chosen"] for r in rows] == [r is cheapest for r in rows]
    assert doc["inputs"]["engine"] == cheapest["engine"]
    assert doc["data"]["cost"]["usd_per_month"] == pytest.approx(cheapest["usd_per_month"], rel=1e-12)
    assert doc["inputs"]["engines"] == ["pytorch@2.11.0", "splitwise@2023"]
    # the same figures as sizing under each engine alone
    for r in rows:
        alone = _json(run_cli, "size", str(CHATBOT), "--engine", r["engine"]["id"])
        assert alone["data"]["cost"]["usd_per_month"] == pytest.approx(r["usd_per_month"], rel=1e-12)
    code, out, err = run_cli("size", str(CHATBOT), "--engine", "pytorch,splitwise")
    assert code == 0, err
    assert "engines compared" in out


def test_auto_leaves_out_the_reference_profiles(catalog: Catalog) -> None:
    names = api.engine_list(catalog, "auto")
    assert "vllm" in names and not set(names) & set(api.REFERENCE_ENGINES)
    assert api.several_engines("auto") and api.several_engines("vllm,sglang") and not api.several_engines("vllm@0.12.0")


def test_size_engines_library() -> None:
    spec = api.load_workload_spec(CHATBOT)
    comparison = api.size_engines(spec, ["splitwise", "pytorch", "splitwise@2023"], written_in=CHATBOT)
    assert [r.engine.id for r in comparison.runs] == ["splitwise", "pytorch"]  # named twice: sized once
    assert comparison.best.result is not None
    assert all(comparison.best.result.plan.evaluation.usd_per_hour <= r.result.plan.evaluation.usd_per_hour
               for r in comparison.runs if r.result is not None)  # fmt: skip


def test_engine_help(run_cli: Run) -> None:
    code, out, _ = run_cli("size", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "auto" in text and "pytorch" in text and "splitwise" in text
    for args in (["check"], ["simulate"], ["sweep"], ["report"], ["estimate", "prefill"], ["estimate", "decode"]):
        code, out, _ = run_cli(*args, "--help")
        assert code == 0 and "--engine" in out, args
