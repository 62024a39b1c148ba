"""The sizing MIP against brute force on small instances (docs/design.md §4, §5 "known optimum").

Instances: one class, one or two GPU types, one KV link, the candidates that
``enumerate_candidates`` scores. The brute force enumerates integer replica counts per candidate
(which covers every routing split, since shares are continuous): a role's counts are feasible when
``Σ_c max(n_c − r, 0)·max_rate_c ≥ rate`` (r = redundancy), and the prefill counts must also carry
the KV bytes: ``rate·kv_bytes ≤ link_bw·Σ tp·n``. Roles are independent (one link, whose port every
GPU of either role pays at perf.cost's hourly port price), so the optimum is the sum of each role's cheapest
feasible counts.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.domain import Catalog, Workload
from planner.io.workload import parse_workload, to_domain
from planner.optimize.candidates import Candidate, enumerate_candidates
from planner.optimize.model import TIE_BREAK_PER_GPU, TIE_BREAK_PER_INDEX, BuiltModel, build_model
from planner.optimize.solve import solve, values
from planner.perf import cost, power
from planner.perf.evaluate import make_replica
from planner.perf.serving import prefill_service
from planner.perf.transfer import link_effective_bytes_per_s

REL = 1e-6  # MIP gap and the tolerance of every objective comparison

CHAT = {
    "model": "llama-3.1-70b",
    "classes": [
        {
            "name": "chat",
            "rate_rps": 1.0,
            "input_tokens": {"mean": 2000, "p50": 1500, "p90": 4000, "p99": 7000},
            "output_tokens": {"mean": 300, "p50": 250, "p90": 600, "p99": 1000},
            "slo": {"ttft_p99_ms": 1000, "tpot_p99_ms": 60},
        }
    ],
    "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["a100-sxm-80gb", "h100-sxm"], "links": ["ib-ndr-400"]},
}
# Llama-3.1-8B with 8K-token prompts over 25GbE: the KV stream nearly fills a prefill GPU's port.
KV_HEAVY = {
    "model": "llama-3.1-8b",
    "classes": [
        {
            "name": "long",
            "rate_rps": 1.0,
            "input_tokens": {"mean": 8000, "p50": 8000, "p90": 8000, "p99": 8000},
            "output_tokens": {"mean": 200, "p50": 200, "p90": 200, "p99": 200},
            "slo": {"ttft_p99_ms": 6000, "tpot_p99_ms": 40},
        }
    ],
    "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["h100-sxm"], "links": ["ethernet-25"]},
}


@pytest.fixture(scope="module")
def catalog(catalog: Catalog) -> Catalog:
    """The datasheet power model on every GPU: these tests check the MIP's coefficients against
    perf.cost / perf.power's formulas; the measured-power path (catalogs/power.yaml) is tested in
    tests/test_power.py."""
    return replace(catalog, power={})


def make_workload(catalog: Catalog, doc: dict[str, Any], **constraints: Any) -> Workload:
    d = copy.deepcopy(doc)
    d["constraints"] = constraints
    return to_domain(parse_workload(d, "test"), catalog)


def with_rate(workload: Workload, rate: float) -> Workload:
    (cls,) = workload.classes
    return replace(workload, classes=(replace(cls, rate_rps=rate),))


def candidates_of(catalog: Catalog, workload: Workload) -> list[Candidate]:
    gpus = {"prefill": workload.prefill_gpus, "decode": workload.decode_gpus}
    return enumerate_candidates(catalog, workload, ("prefill", "decode"), gpus)


def price(catalog: Catalog, c: Candidate, workload: Workload) -> float:
    """USD per replica-hour: its GPUs' list price and one KV port per GPU on the workload's one link."""
    p = catalog.default_price(c.pool.gpu)
    assert p is not None
    (link,) = workload.links
    return c.pool.tp * (p.usd_per_gpu_hour + cost.port_usd_per_hour(catalog.links[link], workload.pricing, catalog))


def role_optimum(
    cands: Sequence[Candidate],
    rate: float,
    redundancy: int,
    weight: Callable[[Candidate], float],
    min_gpus: float = 0.0,
) -> tuple[float, tuple[int, ...]]:
    """Cheapest integer counts (by ``weight`` per replica) with capacity for ``rate`` and at least
    ``min_gpus`` GPUs in total. Exhaustive over 0..(⌊rate/m⌋ + 1 + r + ⌈min_gpus/tp⌉) replicas per
    candidate (a replica that carries no traffic still counts for the KV ports, as in the MIP),
    with a cost bound to prune."""
    (name,) = {k for c in cands for k in c.max_rate_rps}
    m = [c.max_rate_rps[name] for c in cands]
    ub = [int(rate / mi) + 1 + redundancy + math.ceil(min_gpus / c.pool.tp) for c, mi in zip(cands, m, strict=True)]
    best: tuple[float, tuple[int, ...]] = (math.inf, ())

    def rec(i: int, counts: tuple[int, ...], cost: float, cap: float, gpus: int) -> None:
        nonlocal best
        if cost >= best[0] - 1e-9:
            return
        if cap >= rate * (1 - 1e-12) and gpus >= min_gpus:
            best = (cost, counts + (0,) * (len(cands) - i))
            return
        if i == len(cands):
            return
        for n in range(ub[i] + 1):
            rec(
                i + 1, (*counts, n), cost + n * weight(cands[i]), cap + max(n - redundancy, 0) * m[i], gpus + n * cands[i].pool.tp
            )

    rec(0, (), 0.0, 0.0, 0)
    return best


def brute_force(catalog: Catalog, workload: Workload, cands: list[Candidate], weight: Callable[[Candidate], float]) -> float:
    (cls,) = workload.classes
    (link,) = workload.links
    r = workload.constraints.redundancy
    usable = [c for c in cands if c.max_rate_rps.get(cls.name, 0.0) > 0]
    prefill = [c for c in usable if c.pool.role == "prefill"]
    decode = [c for c in usable if c.pool.role == "decode"]
    bw = link_effective_bytes_per_s(catalog.links[link], catalog.engine)
    kv_gpus = cls.rate_rps * prefill[0].kv_bytes[cls.name] / bw
    p_cost, _ = role_optimum(prefill, cls.rate_rps, r, weight, min_gpus=kv_gpus)
    d_cost, _ = role_optimum(decode, cls.rate_rps, r, weight)
    return p_cost + d_cost


def feasible_counts(workload: Workload, cands: list[Candidate], n: dict[str, int]) -> bool:
    """The MIP's counts, checked by the brute force's own rule."""
    (cls,) = workload.classes
    r = workload.constraints.redundancy
    for role in ("prefill", "decode"):
        cap = sum(
            max(n[c.key] - r, 0) * c.max_rate_rps[cls.name]
            for c in cands
            if c.pool.role == role and c.max_rate_rps.get(cls.name, 0.0) > 0
        )
        if cap < cls.rate_rps * (1 - 1e-7):
            return False
    return True


def mip(catalog: Catalog, workload: Workload, cands: list[Candidate], solver: str = "highs") -> tuple[float, dict[str, int]]:
    built = build_model(workload, catalog, cands)
    outcome = solve(built, solver)  # type: ignore[arg-type]
    assert outcome.status == "optimal"
    n, _, link = values(built)
    assert link == workload.links[0]
    goal = {"cost": built.cost_expr, "gpus": built.gpus_expr}[workload.objective]
    value = float(goal.value())
    # The objective adds only the documented tie-breaks (1e-6 per GPU, 1e-9 per candidate index).
    assert outcome.objective is not None
    assert outcome.objective == pytest.approx(value, rel=1e-4, abs=1e-2)
    return value, n


@pytest.fixture(scope="module")
def chat_wl(catalog: Catalog) -> dict[int, Workload]:
    return {r: make_workload(catalog, CHAT, redundancy=r) for r in (0, 1)}


@pytest.fixture(scope="module")
def chat_cands(catalog: Catalog, chat_wl: dict[int, Workload]) -> dict[int, list[Candidate]]:
    # Per-replica capacities do not depend on the class's rate, so the candidates are scored once.
    return {r: candidates_of(catalog, w) for r, w in chat_wl.items()}


def test_instance_shape(chat_cands: dict[int, list[Candidate]]) -> None:
    """The brute-force instance is small and mixed: both decode GPUs, only lone-replica rates."""
    cands = chat_cands[0]
    assert 4 <= len(cands) <= 12
    assert {c.pool.gpu for c in cands if c.pool.role == "decode"} == {"a100-sxm-80gb", "h100-sxm"}
    assert all(c.servers == 1 for c in cands)
    assert [c.key for c in cands] == sorted(c.key for c in cands)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(rate=st.floats(min_value=0.05, max_value=9.0), redundancy=st.sampled_from([0, 1]))
def test_mip_cost_matches_brute_force(
    catalog: Catalog, chat_wl: dict[int, Workload], chat_cands: dict[int, list[Candidate]], rate: float, redundancy: int
) -> None:
    workload = with_rate(chat_wl[redundancy], rate)
    cands = chat_cands[redundancy]
    value, n = mip(catalog, workload, cands)
    expected = brute_force(catalog, workload, cands, lambda c: price(catalog, c, workload))
    assert value == pytest.approx(expected, rel=REL)
    assert feasible_counts(workload, cands, n)
    if redundancy:
        assert all(count == 0 or count >= 2 for count in n.values())


@pytest.mark.parametrize("rate", [0.4, 2.5, 6.2, 11.0])
def test_mip_gpu_objective_matches_brute_force(catalog: Catalog, rate: float) -> None:
    doc = copy.deepcopy(CHAT) | {"objective": "gpus"}
    workload = with_rate(make_workload(catalog, doc), rate)
    cands = candidates_of(catalog, workload)
    value, n = mip(catalog, workload, cands)
    assert value == pytest.approx(brute_force(catalog, workload, cands, lambda c: c.pool.tp), rel=REL)
    assert feasible_counts(workload, cands, n)


@pytest.mark.parametrize(
    ("rate", "redundancy"),
    [
        (3.0, 0),
        (9.5, 0),
        (17.0, 0),
        (23.0, 0),
        (3.0, 1),
        (9.5, 1),
        pytest.param(17.0, 1),
        pytest.param(23.0, 1),
    ],
)
def test_mip_with_binding_kv_bandwidth_matches_brute_force(catalog: Catalog, rate: float, redundancy: int) -> None:
    """25GbE KV stream: the brute force includes ``rate·kv_bytes ≤ bw·Σ tp·n`` on prefill.
    At 17 rps with N+1 the optimum is 9 TP1 prefill replicas (KV needs 8.15 GPUs) + 6 TP1 decode =
    92.325 $/h; the MIP may use at most 8 TP1 prefill replicas and returns 98.48 $/h."""
    workload = with_rate(make_workload(catalog, KV_HEAVY, redundancy=redundancy), rate)
    cands = candidates_of(catalog, workload)
    value, _ = mip(catalog, workload, cands)
    assert value == pytest.approx(brute_force(catalog, workload, cands, lambda c: price(catalog, c, workload)), rel=REL)


def test_kv_stream_is_carried_on_a_slow_link(catalog: Catalog) -> None:
    """The instance is KV-bound: its prompts' KV takes longer on a 25GbE port than their prefill. A prefill
    replica's rate is paced by its slower stage (GPU or NIC), so the capacity rows alone buy the prefill GPUs
    the KV stream needs (the kv_bandwidth row holds with them), and the MIP's cost is that optimum."""
    workload = with_rate(make_workload(catalog, KV_HEAVY), 9.5)
    cands = candidates_of(catalog, workload)
    (cls,) = workload.classes
    bw = link_effective_bytes_per_s(catalog.links["ethernet-25"], catalog.engine)
    prefill = [c for c in cands if c.pool.role == "prefill"]
    decode = [c for c in cands if c.pool.role == "decode"]
    kv_gpus = cls.rate_rps * prefill[0].kv_bytes[cls.name] / bw
    usd = lambda c: price(catalog, c, workload)  # noqa: E731
    no_kv, _ = role_optimum(prefill, cls.rate_rps, 0, usd)
    with_kv, _ = role_optimum(prefill, cls.rate_rps, 0, usd, kv_gpus)
    dec, _ = role_optimum(decode, cls.rate_rps, 0, usd)
    assert with_kv == pytest.approx(no_kv, rel=1e-9)  # the per-replica rates already carry the KV stream
    svc = [
        prefill_service(make_replica(catalog, workload, c.pool.gpu, c.pool.tp), cls, catalog.links["ethernet-25"])
        for c in prefill
        if c.pool.link == "ethernet-25"
    ]
    assert any(s.pace_mean_s > s.mean_s * (1 + 1e-3) for s in svc)  # the NIC is the slower stage here
    built = build_model(workload, catalog, cands)
    assert solve(built).status == "optimal"
    n, _, _ = values(built)
    assert sum(c.pool.tp * n[c.key] for c in prefill) >= kv_gpus * (1 - 1e-9)
    assert float(built.cost_expr.value()) == pytest.approx(with_kv + dec, rel=REL)


@pytest.mark.parametrize(("doc", "rate", "redundancy"), [(CHAT, 1.7, 0), (CHAT, 7.3, 1), (KV_HEAVY, 9.5, 0)])
def test_highs_and_cbc_agree(catalog: Catalog, doc: dict[str, Any], rate: float, redundancy: int) -> None:
    workload = with_rate(make_workload(catalog, doc, redundancy=redundancy), rate)
    cands = candidates_of(catalog, workload)
    highs, _ = mip(catalog, workload, cands, "highs")
    cbc, _ = mip(catalog, workload, cands, "cbc")
    assert cbc == pytest.approx(highs, rel=REL)


def test_build_model_is_deterministic(
    catalog: Catalog, chat_wl: dict[int, Workload], chat_cands: dict[int, list[Candidate]]
) -> None:
    """Same inputs, same LP, variable for variable and row for row."""
    workload = with_rate(chat_wl[1], 4.0)
    a = build_model(workload, catalog, chat_cands[1])
    b = build_model(workload, catalog, chat_cands[1])
    assert [v.name for v in a.problem.variables()] == [v.name for v in b.problem.variables()]
    assert list(a.problem.constraints) == list(b.problem.constraints)
    assert str(a.problem.objective) == str(b.problem.objective)
    assert set(a.families) >= {"route", "capacity", "in_use", "fabric", "kv_bandwidth"}


# --------------------------------------------------------------------------- one cost formula
# The MIP prices replicas with the coefficients perf.cost and perf.power compute (the formulas the
# reports use), so a change to them reaches the objective. H100 only: the one GPU with a server capex.

H100_CHAT = copy.deepcopy(CHAT) | {
    "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["h100-sxm"], "links": ["ib-ndr-400"]}
}
PRICING_DOCS: dict[str, dict[str, Any]] = {
    "on-demand": {"mode": "on-demand"},
    "reserved": {"mode": "reserved", "discount_frac": 0.35},
    "capex": {"mode": "capex", "amortization_years": 4},
}


def priced_workload(catalog: Catalog, mode: str, rate: float = 4.0, redundancy: int = 1) -> Workload:
    doc = copy.deepcopy(H100_CHAT) | {"pricing": PRICING_DOCS[mode]}
    return with_rate(make_workload(catalog, doc, redundancy=redundancy), rate)


def with_port_price(catalog: Catalog, link: str, port_usd: float) -> Catalog:
    return replace(catalog, links={**catalog.links, link: replace(catalog.links[link], port_usd=port_usd)})


def perf_cost_of(catalog: Catalog, workload: Workload, built: BuiltModel) -> tuple[float, float]:
    """USD/hour and watts of a solved model's replicas and routing, priced by perf.cost and perf.power
    directly (not through the candidates' coefficients)."""
    pricing = workload.pricing
    fixed = watts = 0.0
    for c in built.candidates:
        n = round(built.n[c.key].value() or 0.0)
        gpu = catalog.gpus[c.pool.gpu]
        fixed += n * c.pool.tp * cost.gpu_fixed_usd_per_hour(catalog, c.pool.gpu, pricing)
        watts += n * c.pool.tp * power.idle_power_w(gpu)
        for k in workload.classes:
            if (k.name, c.key) in built.x:
                share = built.x[(k.name, c.key)].value() or 0.0
                watts += c.pool.tp * power.dynamic_power_w(gpu, c.pool.role) * k.rate_rps * c.busy_s[k.name] * share
    ports = 0.0
    for lk in built.y:
        prefill_gpus = sum(c.pool.tp * round(built.n[c.key].value() or 0.0) for c in built.candidates if c.pool.link == lk)
        ports += cost.port_usd_per_hour(catalog.links[lk], pricing, catalog) * (prefill_gpus + (built.d[lk].value() or 0.0))
    return fixed + cost.energy_usd_per_hour(catalog, pricing, watts) + ports, watts


@pytest.mark.parametrize("mode", sorted(PRICING_DOCS))
def test_candidates_carry_perf_coefficients(catalog: Catalog, mode: str) -> None:
    workload = priced_workload(catalog, mode)
    cands = candidates_of(catalog, workload)
    assert {c.pool.role for c in cands} == {"prefill", "decode"}
    for c in cands:
        gpu = catalog.gpus[c.pool.gpu]
        assert c.usd_per_replica_hour == c.pool.tp * cost.gpu_fixed_usd_per_hour(catalog, c.pool.gpu, workload.pricing)
        assert c.idle_w_per_replica == c.pool.tp * power.idle_power_w(gpu)
        assert c.dynamic_w_per_replica == c.pool.tp * power.dynamic_power_w(gpu, c.pool.role)
        # A replica busy a fraction u of the time draws what the reports' power model says.
        for u in (0.0, 0.4, 1.0):
            expected = c.pool.tp * power.gpu_power_w(gpu, c.pool.role, u)
            assert c.idle_w_per_replica + c.dynamic_w_per_replica * u == pytest.approx(expected, rel=1e-12)


def ports_usd_of(catalog: Catalog, workload: Workload, built: BuiltModel) -> float:
    """USD/hour of the solved model's KV ports: one per GPU of either role on its one link, at perf.cost's price."""
    (link,) = workload.links
    gpus = sum(c.pool.tp * round(built.n[c.key].value() or 0.0) for c in built.candidates)
    return gpus * cost.port_usd_per_hour(catalog.links[link], workload.pricing, catalog)


@pytest.mark.parametrize(
    ("mode", "port_usd"),
    [("on-demand", None), ("reserved", None), ("capex", None), ("capex", 1500.0), ("on-demand", 1500.0), ("on-demand", 0.0)],
)
def test_mip_objective_is_the_perf_cost_of_its_plan(catalog: Catalog, mode: str, port_usd: float | None) -> None:
    """Solved objective = Σ replicas x perf.cost's fixed price + perf.cost's energy price of the
    plan's watts + ports, plus the documented tie-breaks, for every pricing mode. The KV ports are priced in
    every mode: the catalog's parts (NIC, switch ports, cables) or a link's all-in port_usd, amortized over the
    capex years or the catalog's network assumption."""
    cat = with_port_price(catalog, "ib-ndr-400", port_usd) if port_usd is not None else catalog
    workload = priced_workload(cat, mode)
    cands = candidates_of(cat, workload)
    built = build_model(workload, cat, cands)
    outcome = solve(built)
    assert outcome.status == "optimal"
    usd, watts = perf_cost_of(cat, workload, built)
    assert float(built.cost_expr.value()) == pytest.approx(usd, rel=1e-9)
    assert float(built.power_expr.value()) == pytest.approx(watts, rel=1e-9)
    n, _, _ = values(built)
    gpus = sum(c.pool.tp * n[c.key] for c in cands)
    tie = sum(TIE_BREAK_PER_INDEX * i * n[c.key] for i, c in enumerate(cands))
    assert float(built.problem.objective.value()) == pytest.approx(usd + TIE_BREAK_PER_GPU * gpus + tie, rel=1e-9)
    assert outcome.objective == pytest.approx(usd + TIE_BREAK_PER_GPU * gpus + tie, rel=1e-6)
    fixed = sum(n[c.key] * c.usd_per_replica_hour for c in cands)
    link = cat.links["ib-ndr-400"]
    years = PRICING_DOCS["capex"]["amortization_years"] if mode == "capex" else cat.network.amortization_years
    capital = port_usd if port_usd is not None else cost.port_bill(link, cat).usd
    assert capital is not None and years is not None
    port_hr = cost.port_usd_per_hour(link, workload.pricing, cat)
    assert port_hr == pytest.approx(capital / (years * cost.HOURS_PER_YEAR), rel=1e-12)
    assert (port_hr > 0) == (capital > 0)
    ports = ports_usd_of(cat, workload, built)
    if mode == "capex":
        assert usd > (fixed + ports) * (1 + 1e-3)  # electricity on top of the amortized capex and ports
    else:
        assert usd == pytest.approx(fixed + ports, rel=1e-12)  # cloud prices include power; ports are added


def test_reserved_objective_is_the_discounted_on_demand_one(catalog: Catalog) -> None:
    """Same plan, every replica 35 % cheaper: the discount reaches the objective through perf.cost (the KV
    ports are hardware, amortized alike under both modes, and are not discounted)."""
    built = {}
    ports = {}
    for mode in ("on-demand", "reserved"):
        workload = priced_workload(catalog, mode)
        built[mode] = build_model(workload, catalog, candidates_of(catalog, workload))
        assert solve(built[mode]).status == "optimal"
        ports[mode] = ports_usd_of(catalog, workload, built[mode])
    on_demand, reserved = built["on-demand"], built["reserved"]
    assert values(on_demand)[0] == values(reserved)[0]
    assert ports["reserved"] == pytest.approx(ports["on-demand"], rel=1e-12) and ports["reserved"] > 0
    gpus_on_demand = float(on_demand.cost_expr.value()) - ports["on-demand"]
    assert float(reserved.cost_expr.value()) - ports["reserved"] == pytest.approx(0.65 * gpus_on_demand, rel=1e-9)


def test_a_change_to_perf_cost_reaches_the_objective(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch perf.cost's formulas: the candidates' prices, the MIP's coefficients and its optimum follow
    (and so do the reports' GPU-hours, which call the same functions)."""
    workload = priced_workload(catalog, "on-demand")
    base = build_model(workload, catalog, candidates_of(catalog, workload))
    assert solve(base).status == "optimal"
    base_usd = float(base.cost_expr.value())
    base_hour = cost.gpu_usd_per_hour(catalog, "h100-sxm", workload.pricing, 500.0)

    base_ports = ports_usd_of(catalog, workload, base)
    port_hr = cost.port_usd_per_hour(catalog.links["ib-ndr-400"], workload.pricing, catalog)

    def port_part(c: Candidate) -> float:  # a prefill replica's coefficient carries its KV ports too
        return c.pool.tp * port_hr if c.pool.link is not None else 0.0

    fixed = cost.gpu_fixed_usd_per_hour
    monkeypatch.setattr(cost, "gpu_fixed_usd_per_hour", lambda *args: 2.0 * fixed(*args))
    doubled = build_model(workload, catalog, candidates_of(catalog, workload))
    for c in doubled.candidates:
        gpu_part = base.cost_expr[base.n[c.key]] - port_part(c)
        assert doubled.cost_expr[doubled.n[c.key]] == pytest.approx(2.0 * gpu_part + port_part(c), rel=1e-12)
    assert solve(doubled).status == "optimal"
    doubled_ports = ports_usd_of(catalog, workload, doubled)
    assert float(doubled.cost_expr.value()) - doubled_ports == pytest.approx(2.0 * (base_usd - base_ports), rel=REL)
    assert cost.gpu_usd_per_hour(catalog, "h100-sxm", workload.pricing, 500.0) == pytest.approx(2.0 * base_hour)
    monkeypatch.undo()

    # Capex: the electricity price per Wh is the slope of perf.cost's energy formula.
    workload = priced_workload(catalog, "capex")
    cands = candidates_of(catalog, workload)
    plain = build_model(workload, catalog, cands)
    wh = cost.energy_usd_per_wh(catalog, workload.pricing)
    assert wh > 0
    energy = cost.energy_usd_per_hour
    monkeypatch.setattr(cost, "energy_usd_per_hour", lambda cat, pricing, w: 3.0 * energy(cat, pricing, w))
    tripled = build_model(workload, catalog, cands)
    capex_port_hr = cost.port_usd_per_hour(catalog.links["ib-ndr-400"], workload.pricing, catalog)
    for c in cands:
        ports = c.pool.tp * capex_port_hr if c.pool.link is not None else 0.0
        assert plain.cost_expr[plain.n[c.key]] == pytest.approx(
            c.usd_per_replica_hour + c.idle_w_per_replica * wh + ports, rel=1e-12
        )
        assert tripled.cost_expr[tripled.n[c.key]] == pytest.approx(
            c.usd_per_replica_hour + c.idle_w_per_replica * 3 * wh + ports, rel=1e-12
        )
    assert solve(tripled).status == "optimal"
    usd, _ = perf_cost_of(catalog, workload, tripled)  # the patched formula prices the plan
    assert float(tripled.cost_expr.value()) == pytest.approx(usd, rel=1e-9)
