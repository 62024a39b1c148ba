"""``planner size``: the CLI contract (docs/design.md §2), every constraint family of the MIP made binding
through :func:`planner.api.size` (§4), every returned plan re-verified (§5), infeasibility
diagnosis and determinism. Solves are shared through module-scoped fixtures."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CliResult, Run, assert_input_error, cli

from planner import api
from planner.domain import Catalog, Deployment, LinkUse, Pool, Workload
from planner.errors import InfeasibleError
from planner.io.catalog import ENV_VAR
from planner.io.workload import parse_workload, to_domain
from planner.optimize.sizing import SizeResult
from planner.perf.evaluate import evaluate
from planner.units import HOURS_PER_MONTH

# These tests check the core's mechanics on figures worked out under the 2023 Splitwise engine
# profile; they pin it (the default engine's figures are in test_engine_profiles.py and the README).
ENGINE = "splitwise"


@pytest.fixture(scope="session")
def catalog(splitwise_catalog: Catalog) -> Catalog:
    return splitwise_catalog


REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "workloads"
CHATBOT = EXAMPLES / "chatbot.yaml"
MULTI = EXAMPLES / "multi_class.yaml"
REL = 1e-6

FLAGS = [
    "size",
    "--model",
    "llama-3.1-70b",
    "--rate-rps",
    "10",
    "--isl",
    "2000",
    "--osl",
    "300",
    "--ttft-p99-ms",
    "1000",
    "--tpot-p99-ms",
    "60",
    "--prefill-gpus",
    "h100-sxm",
    "--decode-gpus",
    "a100-sxm-80gb,h100-sxm",
]
POOL_KEYS = {"role", "gpu", "tp", "replicas", "num_gpus", "max_batch", "utilization_frac"}
LINE_ITEM_KEYS = ["sku", "description", "quantity", "unit_usd", "extended_usd", "period"]

# A one-class 70B chat workload on H100 prefill and A100/H100 decode (~0.1 s a solve).
CHAT = {
    "model": "llama-3.1-70b",
    "classes": [
        {
            "name": "chat",
            "rate_rps": 10,
            "input_tokens": {"mean": 2000, "p50": 1500, "p90": 4000, "p99": 7000},
            "output_tokens": {"mean": 300, "p50": 250, "p90": 600, "p99": 1000},
            "slo": {"ttft_p99_ms": 1000, "tpot_p99_ms": 60},
        }
    ],
    "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["a100-sxm-80gb", "h100-sxm"], "links": ["ib-ndr-400"]},
}
# Llama-3.1-8B, fixed 8K-token prompts: the KV stream is heavy enough for 25GbE to matter.
LONG_8B = {
    "model": "llama-3.1-8b",
    "classes": [
        {
            "name": "long",
            "rate_rps": 20,
            "input_tokens": {"mean": 8000, "p50": 8000, "p90": 8000, "p99": 8000},
            "output_tokens": {"mean": 200, "p50": 200, "p90": 200, "p99": 200},
            "slo": {"ttft_p99_ms": 6000, "tpot_p99_ms": 40},
        }
    ],
    "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["h100-sxm"], "links": ["ib-ndr-400"]},
}


# ------------------------------------------------------------------------------------------ helpers


def workload(catalog: Catalog, doc: dict[str, Any], *, hardware: dict[str, Any] | None = None, **constraints: Any) -> Workload:
    d = copy.deepcopy(doc)
    if hardware:
        d["hardware"] = d.get("hardware", {}) | hardware
    # The limit tests set each limit against a plan with none: no variety limit unless a test asks for one.
    d["constraints"] = {"max_gpu_types_per_role": None} | constraints
    return to_domain(parse_workload(d, "test"), catalog)


def verify(result: SizeResult, catalog: Catalog) -> None:
    """Re-verify a plan with the performance core, independently of what the optimizer reported."""
    wl = result.workload
    plan = result.plan
    ev = plan.evaluation
    assert plan.optimality == "optimal"
    assert ev.meets_slos
    for c in ev.classes:
        assert c.ttft_at_slo_s <= c.ttft_target_s * (1 + REL), c
        assert c.tpot_at_slo_s <= c.tpot_target_s * (1 + REL), c
        assert c.ttft_p50_s <= c.ttft_at_slo_s * (1 + REL)
        assert c.tpot_p50_s <= c.tpot_at_slo_s * (1 + REL)
    for pr in ev.pools:
        assert 0.0 <= pr.utilization_frac <= 1.0
        assert not pr.saturated
        assert pr.pool.replicas >= 1
    # Cost is the pools' plus the links' (ports), per hour; a month is 730 hours.
    total = sum(pr.usd_per_hour for pr in ev.pools) + sum(lr.usd_per_hour for lr in ev.links)
    assert ev.usd_per_hour == pytest.approx(total, rel=REL)
    assert ev.usd_per_month == pytest.approx(HOURS_PER_MONTH * ev.usd_per_hour, rel=1e-12)
    assert HOURS_PER_MONTH == 730
    for lr in ev.links:
        assert lr.demand_bytes_per_s <= lr.capacity_bytes_per_s * (1 + REL)
    # Every class fully routed in each role.
    roles = {p.key: p.role for p in plan.deployment.pools}
    for cls in wl.classes:
        shares = ev.routing[cls.name]
        for role in {"prefill", "decode"}:
            assert sum(v for k, v in shares.items() if roles.get(k) == role) == pytest.approx(1.0, abs=1e-9)
    # The same deployment evaluated again gives the same numbers.
    again = evaluate(wl, plan.deployment, catalog)
    assert again.usd_per_hour == pytest.approx(ev.usd_per_hour, rel=1e-12)
    assert [c.ttft_at_slo_s for c in again.classes] == pytest.approx([c.ttft_at_slo_s for c in ev.classes], rel=1e-12)
    # N+r: with r replicas of every pool out of service, the SLOs still hold.
    r = wl.constraints.redundancy
    if r:
        left = []
        for p in plan.deployment.pools:
            if p.replicas > r:
                left.append(replace(p, replicas=p.replicas - r))
            else:  # a pool of at most r replicas may only exist to add KV ports: it carries nothing
                assert all(s.get(p.key, 0.0) == 0.0 for s in ev.routing.values()), p
        routing = {k: {p: s for p, s in v.items() if any(q.key == p for q in left)} for k, v in ev.routing.items()}
        degraded = evaluate(wl, Deployment(pools=tuple(left), links=plan.deployment.links, routing=routing), catalog, 0)
        assert degraded.meets_slos, [(c.name, c.ttft_at_slo_s, c.tpot_at_slo_s) for c in degraded.classes]


def gpus_of(result: SizeResult, gpu: str) -> int:
    return sum(pr.pool.num_gpus for pr in result.plan.evaluation.pools if pr.pool.gpu == gpu)


def prefill_gpus(result: SizeResult) -> int:
    return sum(pr.pool.num_gpus for pr in result.plan.evaluation.pools if pr.pool.role == "prefill")


# ------------------------------------------------------------------------------- CLI: JSON contract


@pytest.fixture(scope="module")
def chatbot_json() -> tuple[str, str]:
    """``planner size chatbot.yaml --format json``, twice."""
    runs = []
    for _ in range(2):
        code, out, err = cli("size", str(CHATBOT), "--format", "json")
        assert code == 0, err
        runs.append(out)
    return runs[0], runs[1]


@pytest.fixture(scope="module")
def chatbot_doc(chatbot_json: tuple[str, str]) -> dict[str, Any]:
    return json.loads(chatbot_json[0])


def test_json_envelope(chatbot_doc: dict[str, Any]) -> None:
    assert set(chatbot_doc) >= {"schema_version", "planner_version", "command", "status", "inputs", "data", "warnings"}
    assert chatbot_doc["command"] == "size"
    assert chatbot_doc["status"] == "ok"
    assert chatbot_doc["inputs"]["workload"]["model"] == "llama-3.1-70b"
    assert chatbot_doc["inputs"]["solver"] == "highs"


def test_json_size_keys(chatbot_doc: dict[str, Any]) -> None:
    data = chatbot_doc["data"]
    assert data["pools"]
    for p in data["pools"]:
        assert set(p) >= POOL_KEYS
        assert p["role"] in ("prefill", "decode")
        assert p["num_gpus"] == p["tp"] * p["replicas"]
        assert 0 <= p["utilization_frac"] <= 1
    assert {p["role"] for p in data["pools"]} == {"prefill", "decode"}
    assert isinstance(data["links"], list) and data["links"]
    assert set(data["predicted"]) >= {"ttft_p50_ms", "ttft_at_slo_ms", "tpot_p50_ms", "tpot_at_slo_ms"}
    assert set(data["cost"]) >= {"usd_per_hour", "usd_per_month", "usd_per_mtok"}
    assert data["power_kw"] > 0
    assert data["baselines"]
    for b in data["baselines"]:
        assert {"name", "pools", "cost"} <= set(b)
        assert "usd_per_hour" in b["cost"]
    assert isinstance(data["savings_frac"], float)
    for item in data["line_items"]:
        assert set(item) >= set(LINE_ITEM_KEYS)
        assert item["period"] == "month"


def test_json_numbers_are_consistent(chatbot_doc: dict[str, Any]) -> None:
    data = chatbot_doc["data"]
    cost = data["cost"]
    links_usd = sum(lk["usd_per_hour"] for lk in data["links"])
    assert cost["usd_per_hour"] == pytest.approx(sum(p["usd_per_hour"] for p in data["pools"]) + links_usd, rel=REL)
    assert cost["usd_per_month"] == pytest.approx(730 * cost["usd_per_hour"], rel=REL)
    assert sum(i["extended_usd"] for i in data["line_items"]) == pytest.approx(cost["usd_per_month"], rel=REL)
    for i in data["line_items"]:
        assert i["extended_usd"] == pytest.approx(i["quantity"] * i["unit_usd"], rel=REL)
    assert data["num_gpus"] == sum(p["num_gpus"] for p in data["pools"])
    assert data["power_kw"] == pytest.approx(sum(p["power_kw"] for p in data["pools"]), rel=REL)
    # $/1M output tokens: USD per hour over output tokens per hour.
    assert cost["usd_per_mtok"] == pytest.approx(cost["usd_per_hour"] / (3600 * data["output_tokens_per_s"]) * 1e6, rel=REL)
    # Savings against the cheapest feasible co-located baseline.
    co = [b["cost"]["usd_per_hour"] for b in data["baselines"] if b["name"].startswith("colocated") and b["feasible"]]
    assert data["savings_frac"] == pytest.approx(1 - cost["usd_per_hour"] / min(co), rel=REL)
    # Every SLO met, as predicted.
    for c in data["predicted"]["by_class"]:
        assert c["meets_slo"] is True
        assert c["ttft_at_slo_pct_ms"] <= c["ttft_target_ms"] * (1 + REL)
        assert c["tpot_at_slo_pct_ms"] <= c["tpot_target_ms"] * (1 + REL)
    assert data["predicted"]["ttft_at_slo_ms"] <= 1000 * (1 + REL)
    assert data["predicted"]["tpot_at_slo_ms"] <= 60 * (1 + REL)
    # The workload's limits hold: budget 500,000 $/month, 120 kW, at most 64 A100s.
    assert cost["usd_per_month"] <= 500_000
    assert data["power_kw"] <= 120 * (1 + REL)
    assert sum(p["num_gpus"] for p in data["pools"] if p["gpu"] == "a100-sxm-80gb") <= 64


# ------------------------------------------------------------------------------------- determinism


def test_json_is_byte_identical_on_repeat(chatbot_json: tuple[str, str]) -> None:
    assert chatbot_json[0] == chatbot_json[1]


@pytest.mark.slow
def test_class_order_does_not_change_the_plan(tmp_path: Path) -> None:
    doc = yaml.safe_load(MULTI.read_text())
    names = [c["name"] for c in doc["classes"]]
    doc["classes"] = [*reversed(doc["classes"][1:]), doc["classes"][0]]
    assert [c["name"] for c in doc["classes"]] != names
    shuffled = tmp_path / "shuffled.yaml"
    shuffled.write_text(yaml.safe_dump(doc, sort_keys=False))
    code_a, out_a, err_a = cli("size", str(MULTI), "--format", "json")
    code_b, out_b, err_b = cli("size", str(shuffled), "--format", "json")
    assert code_a == 0 and code_b == 0, (err_a, err_b)
    a, b = json.loads(out_a), json.loads(out_b)
    assert a["data"] == b["data"]
    assert a["warnings"] == b["warnings"]
    # The inputs echo keeps the file's class order (an echo), with the same classes.
    key = lambda c: c["name"]  # noqa: E731
    assert sorted(a["inputs"]["workload"]["classes"], key=key) == sorted(b["inputs"]["workload"]["classes"], key=key)


def test_catalog_order_does_not_change_the_plan(tmp_path: Path, chatbot_doc: dict[str, Any]) -> None:
    """A user catalog listing the built-in GPUs in reverse order (it overrides them by id)."""
    raw = yaml.safe_load((REPO / "catalogs" / "gpus.yaml").read_text())
    ids = list(raw["gpus"])
    raw["gpus"] = {k: raw["gpus"][k] for k in reversed(ids)}
    (tmp_path / "gpus.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    code, out, err = cli("size", str(CHATBOT), "--format", "json", "--catalog-dir", str(tmp_path))
    assert code == 0, err
    assert json.loads(out)["data"] == chatbot_doc["data"]


@pytest.mark.slow
def test_catalog_order_does_not_change_a_default_hardware_plan(tmp_path: Path) -> None:
    """Default hardware (every priced GPU) is where catalog order could leak into candidates."""
    raw = yaml.safe_load((REPO / "catalogs" / "gpus.yaml").read_text())
    raw["gpus"] = {k: raw["gpus"][k] for k in reversed(list(raw["gpus"]))}
    (tmp_path / "gpus.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    args = [*FLAGS[:13], "--format", "json"]  # no hardware flags
    code_a, out_a, err_a = cli(*args)
    code_b, out_b, err_b = cli(*args, "--catalog-dir", str(tmp_path))
    assert code_a == 0 and code_b == 0, (err_a, err_b)
    assert json.loads(out_a)["data"] == json.loads(out_b)["data"]


@pytest.mark.slow
def test_hash_seed_does_not_change_the_output() -> None:
    outs = []
    for seed in ("0", "1"):
        env = {k: v for k, v in os.environ.items() if k != ENV_VAR} | {"PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-m", "planner", "size", str(CHATBOT), "--format", "json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    json.loads(outs[0])


# ----------------------------------------------------------------------------------------- formats


@pytest.fixture(scope="module")
def flags_outputs() -> dict[str, CliResult]:
    """The flags form, once per format."""
    return {fmt: cli(*FLAGS, "--format", fmt) for fmt in ("json", "yaml", "csv", "markdown", "table")}


def test_flags_form_works(flags_outputs: dict[str, CliResult]) -> None:
    code, out, err = flags_outputs["json"]
    assert code == 0, err
    doc = json.loads(out)
    wl = doc["inputs"]["workload"]
    assert wl["hardware"] == {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["a100-sxm-80gb", "h100-sxm"]}
    (cls,) = wl["classes"]
    assert cls["rate_rps"] == 10
    assert cls["input_tokens"]["p99"] == 2000 and cls["output_tokens"]["mean"] == 300
    pools = doc["data"]["pools"]
    assert {p["gpu"] for p in pools if p["role"] == "prefill"} == {"h100-sxm"}
    assert {p["gpu"] for p in pools if p["role"] == "decode"} <= {"a100-sxm-80gb", "h100-sxm"}
    assert doc["data"]["predicted"]["ttft_at_slo_ms"] <= 1000 * (1 + REL)
    assert doc["data"]["predicted"]["tpot_at_slo_ms"] <= 60 * (1 + REL)


def test_yaml_format_has_the_json_data(flags_outputs: dict[str, CliResult]) -> None:
    code, out, err = flags_outputs["yaml"]
    assert code == 0, err
    doc = yaml.safe_load(out)
    ref = json.loads(flags_outputs["json"][1])
    assert doc["data"] == ref["data"]
    assert doc["status"] == "ok"


def test_csv_format_is_the_line_items(flags_outputs: dict[str, CliResult]) -> None:
    code, out, err = flags_outputs["csv"]
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == ",".join([*LINE_ITEM_KEYS, "source", "engine"])  # the price source, then the engine
    items = json.loads(flags_outputs["json"][1])["data"]["line_items"]
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        assert row["sku"] == item["sku"]
        assert int(row["quantity"]) == item["quantity"]
        assert float(row["extended_usd"]) == pytest.approx(item["extended_usd"], abs=0.005)  # CSV money is in cents
        assert row["source"] == (item["source"] or "")


def test_markdown_format(flags_outputs: dict[str, CliResult]) -> None:
    code, out, err = flags_outputs["markdown"]
    assert code == 0, err
    data = json.loads(flags_outputs["json"][1])["data"]
    assert out.startswith("## planner size")
    assert "| role | GPU | TP | replicas |" in out
    for p in data["pools"]:
        assert f"| {p['role']} | {p['gpu']} | {p['tp']} | {p['replicas']} | {p['num_gpus']} |" in out
    assert f"{data['cost']['usd_per_month']:,.0f} USD/month" in out


def test_table_format(flags_outputs: dict[str, CliResult]) -> None:
    code, out, err = flags_outputs["table"]
    assert code == 0, err
    data = json.loads(flags_outputs["json"][1])["data"]
    assert "plan: llama-3.1-70b" in out
    assert "predicted latency vs SLO" in out
    assert f"{data['cost']['usd_per_month']:,.0f}" in out
    assert "baselines" in out


def test_output_file(tmp_path: Path, run_cli: Run) -> None:
    target = tmp_path / "sub" / "plan.json"
    code, out, err = run_cli(*FLAGS, "--format", "json", "-o", str(target))
    assert code == 0, err
    assert out == ""
    doc = json.loads(target.read_text())
    assert doc["command"] == "size" and doc["data"]["pools"]


def test_output_refuses_to_overwrite_the_workload(tmp_path: Path, run_cli: Run) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(CHATBOT.read_text())
    assert_input_error(run_cli("size", str(wl), "--format", "yaml", "-o", str(wl)), "refusing to overwrite")
    assert wl.read_text() == CHATBOT.read_text()


# ---------------------------------------------------------------------------------- exit 2: inputs


def _bad_workload(tmp_path: Path, old: str, new: str) -> Path:
    text = CHATBOT.read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_missing_flags(run_cli: Run) -> None:
    assert_input_error(run_cli("size", "--model", "llama-3.1-70b", "--rate-rps", "3"), "missing", "--isl", "--tpot-p99-ms")


def test_file_and_flags(run_cli: Run) -> None:
    assert_input_error(run_cli("size", str(CHATBOT), "--model", "llama-3.1-70b"), "not both", "--model")


def test_unknown_gpu_has_close_match(run_cli: Run) -> None:
    args = [*FLAGS[:13], "--decode-gpus", "h100-sxmm"]
    assert_input_error(run_cli(*args), "hardware.decode_gpus", "h100-sxmm", "hint:", "h100-sxm")


def test_unknown_gpu_in_file(tmp_path: Path, run_cli: Run) -> None:
    path = _bad_workload(tmp_path, "prefill_gpus: [h100-sxm]", "prefill_gpus: [h100-sx]")
    assert_input_error(run_cli("size", str(path)), "hardware.prefill_gpus", "h100-sx", "did you mean", "h100-sxm")


def test_unknown_key(tmp_path: Path, run_cli: Run) -> None:
    path = _bad_workload(tmp_path, "objective: cost ", "colour: blue\nobjective: cost ")
    assert_input_error(run_cli("size", str(path)), f"{path}:", "colour", "unknown key")


def test_negative_rate_in_file(tmp_path: Path, run_cli: Run) -> None:
    path = _bad_workload(tmp_path, "rate_rps: 20 ", "rate_rps: -2 ")
    assert_input_error(run_cli("size", str(path)), f"{path}:8:", "classes.0.rate_rps")


def test_negative_rate_flag(run_cli: Run) -> None:
    args = list(FLAGS)
    args[args.index("--rate-rps") + 1] = "-1"
    assert_input_error(run_cli(*args), "rate_rps")


def test_p90_above_p99(tmp_path: Path, run_cli: Run) -> None:
    path = _bad_workload(tmp_path, "p90: 4000, p99: 7000", "p90: 8000, p99: 7000")
    assert_input_error(run_cli("size", str(path)), "classes.0.input_tokens", "p90")


def test_class_without_slo(tmp_path: Path, run_cli: Run) -> None:
    path = _bad_workload(tmp_path, "    slo: {ttft_p99_ms: 1000, tpot_p99_ms: 60}\n", "")
    assert_input_error(run_cli("size", str(path)), "classes.0.slo")


def test_missing_workload_file(tmp_path: Path, run_cli: Run) -> None:
    assert_input_error(run_cli("size", str(tmp_path / "nope.yaml")), "nope.yaml")


def test_unknown_solver(run_cli: Run) -> None:
    assert_input_error(run_cli(*FLAGS, "--solver", "gurobi"), "--solver", "gurobi")


def test_intra_node_link_is_rejected(run_cli: Run) -> None:
    assert_input_error(run_cli(*FLAGS, "--links", "nvlink4"), "nvlink4", "intra-node")


# ---------------------------------------------------------------------------- exit 3: infeasibility


def _assert_infeasible(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 3, (code, err)
    if out:  # machine formats carry the diagnosis on stdout as an envelope with status infeasible
        doc = json.loads(out)
        assert doc["status"] == "infeasible"
        assert doc["data"]["message"] in err
    assert "Traceback" not in err
    assert err.startswith("error: ")
    for needle in needles:
        assert needle in err, (needle, err)


def test_tpot_below_batch1_step(run_cli: Run, catalog: Catalog) -> None:
    args = list(FLAGS)
    args[args.index("--tpot-p99-ms") + 1] = "5"
    code, out, err = run_cli(*args, "--format", "json")
    _assert_infeasible(code, out, err, "tpot_p99_ms", "best achievable")
    wl = api.resolve_workload(
        api.workload_spec_from_flags(
            model="llama-3.1-70b",
            rate_rps=10,
            isl=2000,
            osl=300,
            ttft_p99_ms=1000,
            tpot_p99_ms=5,
            prefill_gpus=["h100-sxm"],
            decode_gpus=["a100-sxm-80gb", "h100-sxm"],
        ),
        catalog,
    )
    with pytest.raises(InfeasibleError) as info:
        api.size(wl, catalog)
    diag = info.value.diagnosis
    assert diag["target"] == "tpot_p99_ms"
    # The best achievable value is a real batch-1 step on an allowed decode GPU, above the target.
    best = diag["best_achievable_ms"]
    assert isinstance(best, float) and 5 < best < 60
    tp, gpu = str(diag["on"]).split("x ")
    step = api.estimate("decode", model="llama-3.1-70b", gpu=gpu, tp=int(tp), batch=1, context=2150, catalog=catalog)
    assert step.step.latency_s * 1000 == pytest.approx(best, rel=1e-6)
    for g in ("a100-sxm-80gb", "h100-sxm"):
        for t in (2, 4, 8):
            other = api.estimate("decode", model="llama-3.1-70b", gpu=g, tp=t, batch=1, context=2150, catalog=catalog)
            assert other.step.latency_s * 1000 >= best * (1 - 1e-9)
    assert f"{best:.1f}" in err


def test_ttft_below_prefill_of_p99_prompt(run_cli: Run) -> None:
    args = list(FLAGS)
    args[args.index("--isl") + 1] = "30000"
    args[args.index("--ttft-p99-ms") + 1] = "300"
    code, out, err = run_cli(*args)
    _assert_infeasible(code, out, err, "ttft_p99_ms", "30000-token", "best achievable", "hint:")


def test_ttft_at_other_percentile_is_named(catalog: Catalog) -> None:
    doc = copy.deepcopy(CHAT)
    doc["classes"][0]["slo"] = {"ttft_p90_ms": 50, "tpot_p99_ms": 60}
    with pytest.raises(InfeasibleError) as info:
        api.size(workload(catalog, doc), catalog)
    assert "ttft_p90_ms" in info.value.message
    assert info.value.diagnosis["target"] == "ttft_p90_ms"
    assert info.value.diagnosis["best_achievable_ms"] > 50


def test_max_gpus_too_small_names_the_gpu(catalog: Catalog, run_cli: Run, tmp_path: Path) -> None:
    with pytest.raises(InfeasibleError) as info:
        api.size(workload(catalog, CHAT, max_gpus={"h100-sxm": 8}), catalog)
    assert "h100-sxm" in info.value.message and "max_gpus" in info.value.message
    limits = info.value.diagnosis["limits"]
    assert isinstance(limits, dict) and limits["max_gpus.h100-sxm"]["limit"] == 8
    assert limits["max_gpus.h100-sxm"]["needed"] > 8
    path = _bad_workload(tmp_path, "max_gpus: {a100-sxm-80gb: 64}", "max_gpus: {h100-sxm: 8}")
    _assert_infeasible(*run_cli("size", str(path), "--format", "json"), "h100-sxm", "max_gpus")


# ------------------------------------------------------------------- constraint families (api.size)


@pytest.fixture(scope="module")
def free(catalog: Catalog) -> SizeResult:
    """CHAT with no limits: the reference every limit is set against."""
    return api.size(workload(catalog, CHAT), catalog)


def test_unconstrained_plan_verifies(free: SizeResult, catalog: Catalog) -> None:
    verify(free, catalog)
    assert free.plan.binding == ()
    assert gpus_of(free, "h100-sxm") > 0


def test_gpu_availability(free: SizeResult, catalog: Catalog) -> None:
    """Fewer H100s than the free plan uses: the plan moves work to A100s and costs more."""
    used = gpus_of(free, "h100-sxm")
    limit = used - 8
    result = api.size(workload(catalog, CHAT, max_gpus={"h100-sxm": limit}), catalog)
    verify(result, catalog)
    assert gpus_of(result, "h100-sxm") <= limit
    assert gpus_of(result, "a100-sxm-80gb") > gpus_of(free, "a100-sxm-80gb")
    assert result.plan.evaluation.usd_per_hour > free.plan.evaluation.usd_per_hour * (1 + REL)
    at_limit = api.size(workload(catalog, CHAT, max_gpus={"h100-sxm": gpus_of(result, "h100-sxm")}), catalog)
    assert "gpu_availability__h100_sxm" in at_limit.plan.binding
    assert at_limit.plan.evaluation.usd_per_hour == pytest.approx(result.plan.evaluation.usd_per_hour, rel=REL)


def test_power_cap(free: SizeResult, catalog: Catalog) -> None:
    free_kw = free.plan.evaluation.power_w / 1000
    cap = 0.97 * free_kw
    result = api.size(workload(catalog, CHAT, power_cap_kw=cap), catalog)
    verify(result, catalog)
    assert result.plan.evaluation.power_w / 1000 <= cap * (1 + REL)
    assert result.plan.evaluation.usd_per_hour >= free.plan.evaluation.usd_per_hour * (1 - REL)
    assert result.plan.deployment.pools != free.plan.deployment.pools
    with pytest.raises(InfeasibleError) as info:
        api.size(workload(catalog, CHAT, power_cap_kw=0.5 * free_kw), catalog)
    assert "power_cap_kw" in info.value.message


def test_budget(free: SizeResult, catalog: Catalog) -> None:
    month = free.plan.evaluation.usd_per_month
    above = api.size(workload(catalog, CHAT, budget_usd_per_month=month * 1.001), catalog)
    verify(above, catalog)
    assert above.plan.evaluation.usd_per_month == pytest.approx(month, rel=REL)
    with pytest.raises(InfeasibleError) as info:
        api.size(workload(catalog, CHAT, budget_usd_per_month=month * 0.999), catalog)
    assert "budget_usd_per_month" in info.value.message
    assert f"{month:,.0f}" in info.value.message  # the amount needed
    limits = info.value.diagnosis["limits"]
    assert isinstance(limits, dict)
    assert limits["budget_usd_per_month"]["needed"] == pytest.approx(month, rel=REL)


def test_budget_example_from_design_is_infeasible_by_the_right_amount(catalog: Catalog, chatbot_doc: dict[str, Any]) -> None:
    """docs/design.md's document at 400,000 $/month: the chatbot example's plan costs more than that."""
    needed = chatbot_doc["data"]["cost"]["usd_per_month"]
    assert 400_000 < needed <= 500_000
    spec = api.load_workload_spec(CHATBOT)
    doc = spec.model_dump(mode="json", exclude_none=True)
    doc["constraints"]["budget_usd_per_month"] = 400_000
    with pytest.raises(InfeasibleError) as info:
        api.size(to_domain(parse_workload(doc, "design"), catalog), catalog)
    assert "budget_usd_per_month is 400,000" in info.value.message
    assert f"{needed:,.0f} USD/month needed" in info.value.message


@pytest.fixture(scope="module")
def kv_pair(catalog: Catalog) -> tuple[SizeResult, SizeResult]:
    fast = api.size(workload(catalog, LONG_8B), catalog)
    slow = api.size(workload(catalog, LONG_8B, hardware={"links": ["ethernet-25"]}), catalog)
    return fast, slow


def test_kv_bandwidth(kv_pair: tuple[SizeResult, SizeResult], catalog: Catalog) -> None:
    """8K-token prompts at 20 rps over 25GbE: the KV stream needs more prefill GPUs (ports) than
    the prefill work alone, or the KV row is at its limit."""
    fast, slow = kv_pair
    verify(fast, catalog)
    verify(slow, catalog)
    (lr,) = slow.plan.evaluation.links
    assert lr.link == "ethernet-25"
    assert lr.utilization_frac > 0.8
    assert lr.demand_bytes_per_s <= lr.capacity_bytes_per_s * (1 + REL)
    assert prefill_gpus(slow) > prefill_gpus(fast) or any(b.startswith("kv_bandwidth") for b in slow.plan.binding)
    assert slow.plan.evaluation.usd_per_hour > fast.plan.evaluation.usd_per_hour


@pytest.fixture(scope="module")
def redundant(catalog: Catalog) -> dict[int, SizeResult]:
    return {r: api.size(workload(catalog, CHAT, redundancy=r), catalog) for r in (1, 2)}


@pytest.mark.parametrize("r", [1, 2])
def test_redundancy(redundant: dict[int, SizeResult], free: SizeResult, catalog: Catalog, r: int) -> None:
    """N+r: every pool that carries traffic has at least r+1 replicas and meets the SLOs with r
    replicas out (checked in verify by evaluating the degraded deployment without spares)."""
    result = redundant[r]
    verify(result, catalog)
    for pr in result.plan.evaluation.pools:
        assert pr.pool.replicas >= r + 1
    cheaper = free if r == 1 else redundant[1]
    assert result.plan.evaluation.usd_per_hour > cheaper.plan.evaluation.usd_per_hour


def test_headroom(free: SizeResult, catalog: Catalog) -> None:
    headroom = 0.3
    result = api.size(workload(catalog, CHAT, headroom_frac=headroom), catalog)
    verify(result, catalog)
    assert result.plan.evaluation.num_gpus > free.plan.evaluation.num_gpus
    assert max(pr.utilization_frac for pr in result.plan.evaluation.pools) <= 1 - headroom + 1e-6
    assert max(pr.utilization_frac for pr in free.plan.evaluation.pools) > 1 - headroom


def test_cbc_gives_the_same_plan_cost(free: SizeResult, catalog: Catalog) -> None:
    result = api.size(workload(catalog, CHAT), catalog, solver="cbc")
    assert result.plan.solver == "cbc"
    assert result.plan.evaluation.usd_per_hour == pytest.approx(free.plan.evaluation.usd_per_hour, rel=REL)


def test_objective_gpus_uses_no_more_gpus(free: SizeResult, catalog: Catalog) -> None:
    doc = copy.deepcopy(CHAT) | {"objective": "gpus"}
    result = api.size(workload(catalog, doc), catalog)
    verify(result, catalog)
    assert result.plan.evaluation.num_gpus <= free.plan.evaluation.num_gpus
    assert result.plan.evaluation.usd_per_hour >= free.plan.evaluation.usd_per_hour * (1 - REL)


def test_kv_bound_plan_is_no_dearer_than_a_hand_plan(catalog: Catalog) -> None:
    """25GbE, 30 rps, N+1: 16 TP1 H100 prefill + 10 TP1 H100 decode meets every SLO with one
    replica of each pool out and carries the KV stream, at 26 GPUs; the optimizer must not cost more. (With 15
    the 14 in service each send KV faster than one 25GbE port carries: their prompts queue at the NIC's pace.)"""
    wl = workload(catalog, LONG_8B, hardware={"links": ["ethernet-25"]}, redundancy=1)
    wl = replace(wl, classes=(replace(wl.classes[0], rate_rps=30.0),))
    hand = Deployment(
        pools=(
            Pool(role="prefill", gpu="h100-sxm", tp=1, replicas=16, max_batch=1, link="ethernet-25"),
            Pool(role="decode", gpu="h100-sxm", tp=1, replicas=10, max_batch=32),
        ),
        links=(LinkUse(link="ethernet-25", ports=16),),
        routing={},
    )
    ev = evaluate(wl, hand, catalog)
    assert ev.meets_slos
    assert all(lr.demand_bytes_per_s <= lr.capacity_bytes_per_s for lr in ev.links)
    result = api.size(wl, catalog)
    assert result.plan.evaluation.usd_per_hour <= ev.usd_per_hour * (1 + REL)


def test_api_rejects_bad_solver_and_time_limit(free: SizeResult, catalog: Catalog) -> None:
    from planner.errors import InputError

    with pytest.raises(InputError, match="--solver"):
        api.size(free.workload, catalog, solver="glpk")
    with pytest.raises(InputError, match="time-limit"):
        api.size(free.workload, catalog, time_limit_s=0)
    assert math.isfinite(free.plan.evaluation.usd_per_hour)


def test_fp8_sizes_on_gpus_with_fp8(run_cli: Run) -> None:
    """fp8 by default leaves out the GPUs without fp8 tensor cores (A100s) instead of failing, says
    that no fp8 factors were measured, and names a listed GPU that cannot run fp8."""
    args = ("size", "--model", "llama-3.1-70b", "--rate-rps", "2", "--isl", "1000", "--osl", "200",
            "--ttft-p99-ms", "2000", "--tpot-p99-ms", "80", "--precision", "fp8")  # fmt: skip
    code, out, err = run_cli(*args, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    used = {p["gpu"] for p in doc["data"]["pools"]}
    assert used and not any(g.startswith("a100") for g in used)
    assert any("no fp8 steps measured" in w for w in doc["warnings"])
    lines = assert_input_error(run_cli(*args, "--decode-gpus", "a100-sxm-80gb"))
    assert lines[0].startswith("error: flags: hardware.decode_gpus: a100-sxm-80gb has no fp8 tensor cores")
