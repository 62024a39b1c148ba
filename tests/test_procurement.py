"""Procurement-grade plans (issue 15): one price basis per run; capex never ends in an internal error."""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_input_error, cli

from planner import api
from planner.domain import Catalog, Pool
from planner.io.workload import parse_workload, to_domain
from planner.optimize.sizing import SizeResult
from planner.perf.nodes import pack_nodes

WORKLOAD = """\
model: llama-3.1-8b
classes:
  - name: chat
    rate_rps: 10
    input_tokens: {mean: 1000, p50: 900, p90: 2000, p99: 4000}
    output_tokens: {mean: 200, p50: 180, p90: 400, p99: 800}
    slo: {ttft_p99_ms: 2000, tpot_p99_ms: 60}
"""


def _write(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "w.yaml"
    path.write_text(WORKLOAD + extra)
    return str(path)


def test_capex_with_the_default_hardware_plans_on_the_gpus_that_have_a_server_price(tmp_path: Path) -> None:
    code, out, err = cli("size", _write(tmp_path, "pricing: {mode: capex, amortization_years: 4}\n"), "-f", "json")
    assert code == 0, err
    gpus = {p["gpu"] for p in json.loads(out)["data"]["pools"]}
    assert gpus == {"h100-sxm"}  # the one GPU catalogs/prices.yaml has a server price for


def test_capex_names_every_listed_gpu_without_a_server_price(tmp_path: Path) -> None:
    extra = "pricing: {mode: capex, amortization_years: 4}\nhardware: {decode_gpus: [a100-sxm-80gb, b200, h100-sxm]}\n"
    lines = assert_input_error(cli("size", _write(tmp_path, extra)), "hardware.decode_gpus", "a100-sxm-80gb, b200")
    assert "have no server price" in lines[0]
    assert "h100-sxm" in lines[1]  # the hint names the GPUs that have one


def test_capex_without_amortization_years_is_an_input_error_not_an_internal_one(tmp_path: Path) -> None:
    assert_input_error(cli("size", _write(tmp_path, "pricing: {mode: capex}\n")), "amortization_years")


def test_provider_prices_every_gpu_from_one_provider(tmp_path: Path) -> None:
    code, out, err = cli("size", _write(tmp_path, "pricing: {provider: lambda}\n"), "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    lambda_usd = {"a100-sxm-40gb": 1.29, "a100-sxm-80gb": 1.79, "b200": 4.99, "h100-pcie": 2.49, "h100-sxm": 2.99}
    expected = sum(lambda_usd[p["gpu"]] * p["tp"] * p["replicas"] for p in data["pools"])  # catalogs/prices.yaml
    expected += sum(lk["usd_per_hour"] for lk in data["links"])  # the KV ports, priced apart from the GPUs
    assert abs(data["cost"]["usd_per_hour"] - expected) < 1e-6 * expected
    assert all(p["gpu"] in lambda_usd for p in data["pools"])  # GPUs Lambda does not list are left out


@pytest.mark.parametrize(
    ("provider", "usd"),
    [
        # p5en.48xlarge $63.296 / 8 (dstack-aws-p5en-offers-2026-08); p5, p4de, p4d (datareceipts-hyperscalers-2026-11)
        ("aws", {"h200-sxm": 7.912, "h100-sxm": 6.88, "a100-sxm-80gb": 3.4309, "a100-sxm-40gb": 2.7447}),
        # eastus ND96isr_H100_v5, ND96asr_A100_v4, NC24ads_A100_v4 (datareceipts-hyperscalers-2026-11)
        ("azure", {"h100-sxm": 12.29, "a100-sxm-40gb": 3.3996, "a100-pcie-80gb": 3.673}),
        # us-central1 a3-ultragpu-8g (tanod-gcp-list-prices-2026-10), a3-highgpu-8g, a2-ultragpu-8g, a2-highgpu-8g
        # (cyclenerd-gcp-pricing-2025-03)
        ("gcp", {"h200-sxm": 10.4365, "h100-sxm": 11.0612, "a100-sxm-80gb": 5.0688, "a100-sxm-40gb": 3.6734}),
        ("spheron", {"b200": 6.03, "gb200": 4.54, "h200-sxm": 4.54}),  # spheron-h200-b200-gb200-2026-03
    ],
)
def test_cloud_providers_price_only_the_gpus_they_list(tmp_path: Path, provider: str, usd: dict[str, float]) -> None:
    code, out, err = cli("size", _write(tmp_path, f"pricing: {{provider: {provider}}}\n"), "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["pools"] and all(p["gpu"] in usd for p in data["pools"])
    assert all(p["gpu_usd_per_hour"] == usd[p["gpu"]] for p in data["pools"])
    items = [i for i in data["line_items"] if i["sku"].startswith("gpu:")]
    name = {"aws": "AWS", "gcp": "GCP"}.get(provider, provider.capitalize())
    assert items and all(i["description"].count(name) for i in items)


def test_an_unknown_provider_or_a_provider_with_capex_is_an_input_error(tmp_path: Path) -> None:
    assert_input_error(
        cli("size", _write(tmp_path, "pricing: {provider: oracle}\n")),
        "pricing.provider",
        "AWS, Azure, CoreWeave, DeepSeek leasing assumption, DigitalOcean, GCP, Lambda, Spheron",
    )
    assert_input_error(
        cli("size", _write(tmp_path, "pricing: {mode: capex, amortization_years: 4, provider: lambda}\n")), "provider"
    )


def test_a_plan_on_two_price_bases_warns_and_names_them(tmp_path: Path) -> None:
    extra = "hardware: {prefill_gpus: [h100-sxm], decode_gpus: [a100-pcie-80gb]}\n"
    code, _, err = cli("size", _write(tmp_path, extra), "-f", "json")
    assert code == 0, err
    assert "mix price bases" in err
    assert "a100-pcie-80gb CoreWeave 2024-02" in err and "h100-sxm CoreWeave 2026-02" in err
    code, _, err = cli("size", _write(tmp_path, extra.replace("a100-pcie-80gb", "a100-sxm-80gb")), "-f", "json")
    assert code == 0 and "mix price bases" not in err  # both on CoreWeave's 2026-02 instance list


# --- variety limits -----------------------------------------------------------------------------------------

TWO_CLASSES = {
    "model": "llama-3.1-8b",
    "classes": [
        {
            "name": "chat",
            "rate_rps": 80,
            "input_tokens": {"mean": 1000, "p50": 900, "p90": 2000, "p99": 4000},
            "output_tokens": {"mean": 200, "p50": 180, "p90": 400, "p99": 800},
            "slo": {"ttft_p99_ms": 2000, "tpot_p99_ms": 60},
        },
        {
            "name": "long",
            "rate_rps": 8,
            "input_tokens": {"mean": 6000, "p50": 5000, "p90": 10000, "p99": 16000},
            "output_tokens": {"mean": 300, "p50": 250, "p90": 600, "p99": 1000},
            "slo": {"ttft_p99_ms": 3000, "tpot_p99_ms": 40},
        },
    ],
}


def _sized(catalog: Catalog, rate: float, **constraints: Any) -> SizeResult:
    doc = copy.deepcopy(TWO_CLASSES)
    doc["classes"][0]["rate_rps"], doc["classes"][1]["rate_rps"] = rate, rate / 10
    doc["constraints"] = constraints
    return api.size(to_domain(parse_workload(doc, "test"), catalog), catalog)


def _types(result: SizeResult, role: str | None = None) -> set[str]:
    return {p.pool.gpu for p in result.plan.evaluation.pools if role is None or p.pool.role == role}


@pytest.fixture(scope="module")
def any_types(catalog: Catalog) -> SizeResult:
    return _sized(catalog, 80, max_gpu_types_per_role=None)


def test_one_gpu_type_per_role_by_default(catalog: Catalog, any_types: SizeResult) -> None:
    assert len(_types(any_types, "prefill")) >= 2  # without the limit this load spreads prefill over GPU types
    limited = _sized(catalog, 80)
    assert all(len(_types(limited, role)) == 1 for role in ("prefill", "decode"))
    assert limited.plan.evaluation.meets_slos
    cost, free = limited.plan.evaluation.usd_per_hour, any_types.plan.evaluation.usd_per_hour
    assert cost >= free * (1 - 1e-9)
    assert dict(limited.limiting)["max_gpu_types_per_role"] == pytest.approx(free, rel=1e-6)  # what the limit costs


def test_max_gpu_types_limits_the_whole_plan(catalog: Catalog) -> None:
    one = _sized(catalog, 80, max_gpu_types=1)
    assert len(_types(one)) == 1
    assert one.plan.evaluation.meets_slos


def test_min_pool_utilization_leaves_no_extra_pool_below_the_floor(catalog: Catalog) -> None:
    def extra_pools_below(result: SizeResult, floor: float) -> int:
        below = 0
        for role in ("prefill", "decode"):
            utils = sorted(p.utilization_frac for p in result.plan.evaluation.pools if p.pool.role == role)
            below += sum(u < floor for u in utils[1:])  # a role's first pool may be as small as its load
        return below

    # At 5 req/s (with the KV ports priced) the MIP without the floor and without the fewer-pools second solve
    # splits decode over two pools (21 %, 56 %: a tie with one pool, which `planner size` resolves to one pool). The
    # rate is the tie's, which moves with the catalog's factors (it was 6 req/s before the engines' KV-pool rules).
    from planner.optimize.candidates import enumerate_candidates
    from planner.optimize.sizing import _Clock, _solve

    doc = copy.deepcopy(TWO_CLASSES)
    doc["classes"][0]["rate_rps"], doc["classes"][1]["rate_rps"] = 5, 0.5
    doc["constraints"] = {"max_gpu_types_per_role": None}
    wl = to_domain(parse_workload(doc, "test"), catalog)
    cands = enumerate_candidates(catalog, wl, ("prefill", "decode"), {"prefill": wl.prefill_gpus, "decode": wl.decode_gpus})
    split = _solve(wl, catalog, cands, "highs", _Clock(None))
    assert split is not None
    below = 0
    for role in ("prefill", "decode"):
        utils = sorted(p.utilization_frac for p in split.evaluation.pools if p.pool.role == role)
        below += sum(u < 0.6 for u in utils[1:])
    assert below >= 1  # a second decode pool under 60 % without the floor
    loose = _sized(catalog, 5, max_gpu_types_per_role=None)
    assert loose.plan.evaluation.usd_per_hour == pytest.approx(split.evaluation.usd_per_hour, rel=1e-9)
    tight = _sized(catalog, 5, max_gpu_types_per_role=None, min_pool_utilization_frac=0.6)
    assert extra_pools_below(tight, 0.6) == 0
    assert tight.plan.evaluation.meets_slos


# --- nodes --------------------------------------------------------------------------------------------------


def _fewest_nodes(sizes: list[int], node: int) -> int:
    """Brute force: the fewest nodes of ``node`` GPUs that hold replicas of these sizes (each within one node)."""
    best = len(sizes)
    for assignment in itertools.product(range(len(sizes)), repeat=len(sizes)):
        load = [0] * len(sizes)
        for size, bin_ in zip(sizes, assignment, strict=True):
            load[bin_] += size
        if max(load) <= node:
            best = min(best, sum(1 for x in load if x))
    return best


@pytest.mark.parametrize(
    "replicas", [[(4, 1), (2, 3), (1, 1)], [(8, 1), (1, 3)], [(2, 5)], [(4, 2), (1, 4)], [(1, 7)], [(2, 2), (4, 1), (1, 2)]]
)
def test_packing_fits_every_node_and_uses_the_fewest_nodes(catalog: Catalog, replicas: list[tuple[int, int]]) -> None:
    pools = [Pool(role="decode", gpu="h100-sxm", tp=tp, replicas=n, max_batch=8 * i + 8) for i, (tp, n) in enumerate(replicas)]
    (use,) = pack_nodes(pools, catalog)
    tp_of = {p.key: p.tp for p in pools}
    held = [name for node in use.packing for name in node]
    assert sorted(held) == sorted(f"{p.key}#{i}" for p in pools for i in range(p.replicas))  # every replica once
    for node in use.packing:
        assert sum(tp_of[name.split("#")[0]] for name in node) <= use.gpus_per_node
    sizes = [tp for tp, n in replicas for _ in range(n)]
    assert use.nodes == _fewest_nodes(sizes, 8) == math.ceil(sum(sizes) / 8)
    assert use.stranded_gpus == 8 * use.nodes - sum(sizes)


def test_whole_nodes_pays_for_stranded_gpus_and_the_optimizer_packs_for_them(tmp_path: Path) -> None:
    code, out, err = cli("size", _write(tmp_path, ""), "-f", "json")
    assert code == 0, err
    per_gpu = json.loads(out)["data"]
    code, out, err = cli("size", _write(tmp_path, "pricing: {whole_nodes: true}\n"), "-f", "json")
    assert code == 0, err
    whole = json.loads(out)["data"]
    assert any(n["stranded_gpus"] for n in per_gpu["nodes"])  # GPU by GPU, the plan strands part of a node
    stranded_usd = sum(i["extended_usd"] for i in whole["line_items"] if i["sku"].endswith(":stranded"))
    total_usd = sum(i["extended_usd"] for i in whole["line_items"])  # GPUs, stranded GPUs and KV ports
    assert total_usd == pytest.approx(whole["cost"]["usd_per_month"], rel=1e-9)
    for n in whole["nodes"]:  # every node of the plan is paid in full
        assert n["gpus_used"] + n["stranded_gpus"] == n["nodes"] * n["gpus_per_node"]
    assert stranded_usd >= 0
    # The optimizer prices whole nodes: no dearer than the per-GPU plan rounded up to whole nodes.
    rounded = sum(
        n["nodes"] * n["gpus_per_node"] * next(p["gpu_usd_per_hour"] for p in per_gpu["pools"] if p["gpu"] == n["gpu"])
        for n in per_gpu["nodes"]
    )
    ports = sum(lk["usd_per_hour"] for lk in per_gpu["links"])  # its KV ports, priced the same either way
    assert whole["cost"]["usd_per_hour"] <= (rounded + ports) * (1 + 1e-9)


# ------------------------------------------------------------------------------------ tie-break: fewer pools

TIED = {
    "model": "llama-3.1-70b",
    "classes": [
        {
            "name": "chat",
            "rate_rps": 12,
            "input_tokens": {"mean": 2000, "p50": 1500, "p90": 4000, "p99": 7000},
            "output_tokens": {"mean": 300, "p50": 250, "p90": 600, "p99": 1000},
            "slo": {"ttft_p99_ms": 1000, "tpot_p99_ms": 60},
        },
        {
            "name": "batch-summary",
            "rate_rps": 3,
            "input_tokens": {"mean": 6000, "p50": 5000, "p90": 10000, "p99": 14000},
            "output_tokens": {"mean": 200, "p50": 150, "p90": 400, "p99": 700},
            "slo": {"ttft_p99_ms": 4000, "tpot_p99_ms": 80},
        },
    ],
    "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["a100-sxm-80gb", "h100-sxm"], "links": ["roce-200"]},
    "constraints": {"redundancy": 1},
    "pricing": {"mode": "reserved", "discount_frac": 0.3},
}  # examples/workloads/chat_day.yaml's peak hour


def test_equal_cost_plans_resolve_to_the_fewest_pools_at_the_same_cost(catalog: Catalog) -> None:
    """chat_day's peak: decode on A100 TP4 as 3 replicas at batch 128 + 2 at batch 64 (three pools) costs exactly what
    5 replicas at batch 64 (two pools) cost; without the second solve the MIP returns the three-pool plan."""
    from planner.optimize.candidates import enumerate_candidates
    from planner.optimize.sizing import _Clock, _solve
    from planner.optimize.tiebreak import TIE_REL_TOL

    wl = to_domain(parse_workload(copy.deepcopy(TIED), "test"), catalog)
    cands = enumerate_candidates(catalog, wl, ("prefill", "decode"), {"prefill": wl.prefill_gpus, "decode": wl.decode_gpus})
    plain = _solve(wl, catalog, cands, "highs", _Clock(None))
    fewer = _solve(wl, catalog, cands, "highs", _Clock(None), fewer_pools=True)
    assert plain is not None and fewer is not None
    plain_usd, fewer_usd = plain.evaluation.usd_per_hour, fewer.evaluation.usd_per_hour
    assert fewer_usd <= plain_usd * (1 + TIE_REL_TOL) + 1e-7
    assert abs(fewer_usd - plain_usd) <= 1e-9 * plain_usd  # a tie: the same cost
    assert len(plain.deployment.pools) == 3  # the tie exists today
    assert len(fewer.deployment.pools) == 2  # one pool per role
    assert {p.gpu for p in fewer.deployment.pools} <= {p.gpu for p in plain.deployment.pools}
    assert fewer.evaluation.num_gpus <= plain.evaluation.num_gpus
    assert fewer.evaluation.meets_slos
    (decode,) = [p for p in fewer.deployment.pools if p.role == "decode"]
    assert (decode.gpu, decode.tp, decode.replicas) == ("a100-sxm-80gb", 4, 5)


def test_the_tie_break_never_trades_cost_for_fewer_pools(catalog: Catalog) -> None:
    """Where one GPU type per role would cost more (8B at 80 + 8 req/s spreads prefill over GPU types when allowed),
    the second solve keeps the first solve's cost and its several types: it only chooses among plans of that cost."""
    from planner.optimize.candidates import enumerate_candidates
    from planner.optimize.sizing import _Clock, _solve

    doc = copy.deepcopy(TWO_CLASSES)
    doc["classes"][0]["rate_rps"], doc["classes"][1]["rate_rps"] = 80, 8
    doc["constraints"] = {"max_gpu_types_per_role": None}
    wl = to_domain(parse_workload(doc, "test"), catalog)
    cands = enumerate_candidates(catalog, wl, ("prefill", "decode"), {"prefill": wl.prefill_gpus, "decode": wl.decode_gpus})
    plain = _solve(wl, catalog, cands, "highs", _Clock(None))
    fewer = _solve(wl, catalog, cands, "highs", _Clock(None), fewer_pools=True)
    assert plain is not None and fewer is not None
    assert fewer.evaluation.usd_per_hour <= plain.evaluation.usd_per_hour * (1 + 1e-9)
    assert len({p.gpu for p in fewer.deployment.pools if p.role == "prefill"}) >= 2  # cheaper than one type: kept


# ------------------------------------------------------------------------------------ node bill of materials


def _nodes(tmp_path: Path, extra: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    code, out, err = cli("size", _write(tmp_path, extra), "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    return data, data["nodes"]


def test_node_bom_counts_nics_and_power_per_node_from_the_catalog(tmp_path: Path, catalog: Catalog) -> None:
    data, (nd,) = _nodes(tmp_path, "hardware: {prefill_gpus: [h100-sxm], decode_gpus: [h100-sxm]}\n")
    h100 = catalog.gpus["h100-sxm"]
    assert (h100.node_compute_nics, h100.node_north_south_nics, h100.node_max_power_w) == (8, 1, 10200)  # gpus.yaml
    assert nd["compute_nics"] == 8 * nd["nodes"] and nd["north_south_nics"] == nd["nodes"]
    assert nd["nics_source"] == "nvidia-hgx-ai-factory-ra-h100-h200-b200"
    assert nd["peak_kw_per_node"] == 10.2 and "node_max_power_w" in nd["peak_basis"]
    # At load: the pools' GPU power (power_kw) over the nodes (stranded GPUs off, as the cost model has them).
    assert nd["gpu_power_kw_per_node"] * nd["nodes"] == pytest.approx(data["power_kw"], rel=1e-9)
    assert nd["gpu_power_kw_per_node"] < nd["peak_kw_per_node"]
    assert nd["racks"] is None and nd["nodes_per_rack"] is None and "rack_power_kw not given" in nd["rack_note"]


def test_racks_follow_the_rack_budget(tmp_path: Path) -> None:
    hw = "hardware: {prefill_gpus: [h100-sxm], decode_gpus: [h100-sxm]}\n"
    _, (nd,) = _nodes(tmp_path, hw + "constraints: {rack_power_kw: 25}\n")
    assert nd["nodes_per_rack"] == 2  # floor(25 / 10.2)
    assert nd["racks"] == math.ceil(nd["nodes"] / 2)
    assert nd["peak_kw_per_rack"] == pytest.approx(min(nd["nodes"], 2) * 10.2)
    _, (small,) = _nodes(tmp_path, hw + "constraints: {rack_power_kw: 5}\n")  # below one node's peak
    assert small["racks"] is None and small["nodes_per_rack"] == 0 and "exceeds the rack budget" in small["rack_note"]


def test_a_gpu_without_node_figures_says_so_and_bounds_the_peak_by_its_gpus(tmp_path: Path, catalog: Catalog) -> None:
    hw = "hardware: {prefill_gpus: [a100-sxm-80gb], decode_gpus: [a100-sxm-80gb]}\n"
    _, (nd,) = _nodes(tmp_path, hw + "constraints: {rack_power_kw: 30}\n")
    a100 = catalog.gpus["a100-sxm-80gb"]
    assert a100.node_compute_nics is None and nd["compute_nics"] is None and nd["nics_source"] is None
    assert nd["peak_kw_per_node"] == pytest.approx(8 * a100.tdp_w / 1000) and "GPUs alone" in nd["peak_basis"]
    assert "at most" in nd["rack_note"]


@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_a_bad_rack_budget_is_an_input_error(tmp_path: Path, value: str) -> None:
    assert_input_error(cli("size", _write(tmp_path, f"constraints: {{rack_power_kw: {value}}}\n")), "rack_power_kw")


def test_catalog_list_names_the_provider_prices_of_a_gpu_without_a_default_one() -> None:
    code, out, err = cli("catalog", "list", "gpus")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "no default price (Spheron $4.54/GPU-h with" in flat  # gb200: only Spheron's row (prices.yaml)
