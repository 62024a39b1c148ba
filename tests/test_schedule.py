"""``planner size --schedule`` (issue 14, item 3): the hourly plans against the peak fleet, coupled scaling, the
scale-up lead time, the purchase MIP against brute force, and the command's outputs and errors."""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import Lazy, Run, assert_input_error, cli

from planner import api
from planner.domain import Catalog, Deployment, Pool, Workload
from planner.errors import InputError, SolverError
from planner.io.workload import parse_workload, to_domain
from planner.optimize import schedule as sched
from planner.optimize.candidates import enumerate_candidates
from planner.optimize.purchase import DAYS_PER_MONTH, PurchaseProblem, purchase_cost, solve_purchase
from planner.optimize.schedule import HourPlan, Schedule, day_schedule, undominated_links
from planner.optimize.sizing import size
from planner.perf.evaluate import evaluate
from planner.report.schedule import schedule_csv_rows, schedule_data

REPO = Path(__file__).resolve().parent.parent
CHAT_DAY = REPO / "examples" / "workloads" / "chat_day.yaml"
CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"
REL = 1e-9

# The planner's synthetic diurnal cycle (planner/sim/synth.py), averaged per hour, peak at 14:00.
DAY = [0.539, 0.506, 0.506, 0.539, 0.604, 0.696, 0.809, 0.935, 1.065, 1.191, 1.304, 1.396]
DAY += [1.461, 1.494, 1.494, 1.461, 1.396, 1.304, 1.191, 1.065, 0.935, 0.809, 0.696, 0.604]

CHAT: dict[str, Any] = {
    "model": "llama-3.1-70b",
    "classes": [
        {
            "name": "chat",
            "rate_rps": 8,
            "input_tokens": {"mean": 2000, "p50": 1500, "p90": 4000, "p99": 7000},
            "output_tokens": {"mean": 300, "p50": 250, "p90": 600, "p99": 1000},
            "slo": {"ttft_p99_ms": 1000, "tpot_p99_ms": 60},
        }
    ],
    "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["a100-sxm-80gb", "h100-sxm"], "links": ["roce-200"]},
    "constraints": {"redundancy": 1},
}


def workload(catalog: Catalog, doc: dict[str, Any], profile: list[float] | None = None, **top: Any) -> Workload:
    d = copy.deepcopy(doc)
    if profile is not None:
        for c in d["classes"]:
            c["rate_profile"] = {"hourly_rps": profile}
    d.update(top)
    return to_domain(parse_workload(d, "test"), catalog, "test")


def _pools(dep: Deployment) -> list[tuple[str, int]]:
    return sorted((p.key, p.replicas) for p in dep.pools)


@pytest.fixture(scope="module")
def chat_day(catalog: Catalog) -> tuple[Workload, Schedule]:
    wl = api.resolve_workload(api.load_workload_spec(CHAT_DAY), catalog, str(CHAT_DAY))
    return wl, day_schedule(wl, catalog, size(wl, catalog, baselines=False).plan)


@pytest.fixture(scope="module")
def chat_runs(catalog: Catalog) -> dict[str, tuple[Workload, Schedule]]:
    """The one-class chat workload over a day: on-demand and reserved pricing."""

    def run(name: str) -> tuple[Workload, Schedule]:
        pricing = {"on-demand": {"mode": "on-demand"}, "reserved": {"mode": "reserved", "discount_frac": 0.3}}[name]
        wl = workload(catalog, CHAT, DAY, pricing=pricing)
        return wl, day_schedule(wl, catalog, size(wl, catalog, baselines=False).plan)

    return Lazy(run)


# ------------------------------------------------------------------------------------------------ the hours


@pytest.mark.parametrize("mode", ["on-demand", "reserved"])
def test_a_flat_profile_gives_planner_sizes_plan_every_hour(catalog: Catalog, mode: str) -> None:
    pricing = {"mode": mode, **({"discount_frac": 0.3} if mode == "reserved" else {})}
    wl = workload(catalog, CHAT, [3.0] * 24, pricing=pricing)
    plain = api.size(wl, catalog)  # what planner size prints
    s = day_schedule(wl, catalog, plain.plan)
    for h in s.hours:
        assert h.source == "peak"
        assert _pools(h.deployment) == _pools(plain.plan.deployment)
        assert h.scale_up_usd == 0
    assert s.scaled_usd_per_day == pytest.approx(s.peak_on_demand_usd_per_day, rel=REL)
    assert s.coupled_usd_per_day == pytest.approx(s.peak_on_demand_usd_per_day, rel=REL)
    assert s.apart_share_frac is None  # scaling saves nothing: no share to split
    assert s.fleet_usd_per_day == pytest.approx(24 * plain.plan.evaluation.usd_per_hour, rel=REL)
    assert s.solves == 0  # an hour at the peak rates is the peak plan, not a re-solve
    if mode == "on-demand":
        assert s.saving_usd_per_day == pytest.approx(0.0, abs=1e-6)
    else:  # the reserved fleet is the peak plan's GPUs at 30 % off (its KV ports are not discounted)
        ev = plain.plan.evaluation
        gpus, ports = sum(pr.usd_per_hour for pr in ev.pools), sum(lr.usd_per_hour for lr in ev.links)
        assert s.saving_frac == pytest.approx(1 - (gpus / 0.7 + ports) / (gpus + ports), rel=1e-9)


@pytest.mark.parametrize("mode", ["on-demand", "reserved"])
def test_every_hour_verifies_and_never_costs_more_than_the_peak_plan(
    catalog: Catalog, chat_runs: dict[str, tuple[Workload, Schedule]], mode: str
) -> None:
    wl, s = chat_runs[mode]
    peak = s.peak_on_demand_usd_per_hour
    by_name = {c.name: c for c in wl.classes}
    rented = replace(wl, pricing=sched.ON_DEMAND)
    for h, c in zip(s.hours, s.coupled, strict=True):
        assert h.rates_rps["chat"] == pytest.approx(by_name["chat"].rate_at_hour(h.hour), rel=1e-12)
        at = replace(rented, classes=tuple(replace(k, rate_rps=h.rates_rps[k.name]) for k in wl.classes))
        for plan in (h, c):
            again = evaluate(at, plan.deployment, catalog)  # re-verified by the core, independently
            assert again.meets_slos, (h.hour, plan.source)
            assert again.usd_per_hour == pytest.approx(plan.usd_per_hour, rel=1e-12)
        assert h.usd_per_hour <= peak * (1 + REL)
        assert h.usd_per_hour <= c.usd_per_hour * (1 + REL)  # the coupled plan is one of the hour's options
        assert c.usd_per_hour <= peak * (1 + REL)
    # A day whose night is a third of its peak: scaling saves, and the pools do move.
    assert s.scaled_usd_per_day < s.peak_on_demand_usd_per_day
    assert len({(h.replicas("prefill"), h.replicas("decode")) for h in s.hours}) > 1


def test_the_chat_day_example_scales_the_pools_apart(chat_day: tuple[Workload, Schedule]) -> None:
    _, s = chat_day
    assert not s.flat and s.lead_time_assumed and s.lead_time_min == sched.DEFAULT_LEAD_TIME_MIN
    for h, c in zip(s.hours, s.coupled, strict=True):
        assert h.usd_per_hour <= s.peak_on_demand_usd_per_hour * (1 + REL)
        assert h.usd_per_hour <= c.usd_per_hour * (1 + REL)
    share = s.apart_share_frac
    assert share is not None and 0 < share <= 1
    expected = (s.coupled_usd_per_day - s.scaled_usd_per_day) / (s.peak_on_demand_usd_per_day - s.scaled_usd_per_day)
    assert share == pytest.approx(expected, rel=1e-12)
    assert s.scaled_usd_per_day == pytest.approx(sum(h.usd_per_hour + h.scale_up_usd for h in s.hours), rel=1e-12)
    # Chat peaks in the afternoon and batch prompts at night: the prefill/decode mix differs between hours.
    mixes = {h.replicas("prefill") / h.replicas("decode") for h in s.hours}
    assert len(mixes) > 1
    assert s.fleet_mode == "reserved"
    ports = sum(lr.usd_per_hour for lr in s.fleet.evaluation.links)  # KV ports: amortized, not discounted
    assert s.fleet_usd_per_day == pytest.approx(24 * (0.7 * (s.peak_on_demand_usd_per_hour - ports) + ports), rel=1e-9)


def test_coupled_pools_share_one_factor(chat_day: tuple[Workload, Schedule]) -> None:
    _, s = chat_day
    peak = {p.key: p.replicas for p in s.fleet.deployment.pools}
    for c, factor in zip(s.coupled, s.coupled_factor, strict=True):
        counts = {p.key: p.replicas for p in c.deployment.pools}
        if factor >= 1:
            assert counts == peak
            continue
        assert set(counts) == set(peak)  # every pool of the peak plan, none other
        for key, n in peak.items():
            assert counts[key] == math.ceil(factor * n - 1e-6), (key, factor, n, counts[key])


def test_a_dearer_solve_is_never_taken(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-optimized plan dearer than the peak plan (here: the peak plan with extra replicas) loses to it."""
    wl = workload(catalog, CHAT, DAY)
    peak = size(wl, catalog, baselines=False).plan

    def dearer(self: object, rates: object, parts: float = 1, pooled: bool = True) -> Deployment:
        return replace(peak.deployment, pools=tuple(replace(p, replicas=p.replicas + 3) for p in peak.deployment.pools))

    monkeypatch.setattr(sched._Planner, "solve", dearer)
    s = day_schedule(wl, catalog, peak)
    assert all(h.source != "solved" for h in s.hours)
    assert all(h.usd_per_hour <= s.peak_on_demand_usd_per_hour * (1 + REL) for h in s.hours)


@pytest.mark.parametrize("limit", [None, 600.0])
def test_a_solve_that_times_out_falls_back_to_the_peak_plan(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, limit: float | None
) -> None:
    wl = workload(catalog, CHAT, DAY)
    peak = size(wl, catalog, baselines=False).plan

    def timeout(self: object, rates: object, parts: float = 1, pooled: bool = True) -> Deployment:
        raise SolverError("highs found no plan within the time limit")

    monkeypatch.setattr(sched._Planner, "solve", timeout)
    if limit is None:  # without a time limit a solver failure is an error (exit 4), not a silent fallback
        with pytest.raises(SolverError):
            day_schedule(wl, catalog, peak)
        return
    s = day_schedule(wl, catalog, peak, time_limit_s=limit)
    assert all(h.source == "peak" and _pools(h.deployment) == _pools(peak.deployment) for h in s.hours)
    assert any("time limit ran out" in w for w in s.warnings)
    assert s.scaled_usd_per_day == pytest.approx(s.peak_on_demand_usd_per_day, rel=REL)


def test_a_time_limit_spent_before_the_hours_leaves_them_to_the_peak_plan(catalog: Catalog) -> None:
    """The run's limit counts from when it started: spent by the sizing, no hour is solved; a growth month, which has
    no plan to fall back on, is a solver error (exit 4)."""
    wl = workload(catalog, CHAT, DAY)
    peak = size(wl, catalog, baselines=False).plan
    spent = time.monotonic() - 10.0
    s = day_schedule(wl, catalog, peak, time_limit_s=5.0, started_s=spent)
    assert s.solves == 0 and all(h.source == "peak" for h in s.hours)
    assert any("time limit ran out" in w for w in s.warnings)
    grown = workload(catalog, CHAT, DAY, growth={"per_month_frac": 0.05, "months": 2})
    with pytest.raises(SolverError, match="growth month 1"):
        day_schedule(grown, catalog, peak, time_limit_s=5.0, started_s=spent)


def test_the_scale_up_lead_time_is_paid_per_added_gpu(catalog: Catalog) -> None:
    """Hand-worked: 2 then 3 then 1 replicas of TP 4 H100 over three hours (the rest of the day idle): hour 1 starts
    one replica (4 GPUs) and hour 0 two (8 GPUs, after the idle hour 23), each paid 15 min at the list price."""
    pool = Pool(role="decode", gpu="h100-sxm", tp=4, replicas=2, max_batch=64)

    def at(h: int, n: int) -> HourPlan:
        dep = Deployment(pools=(replace(pool, replicas=n),) if n else ())
        return HourPlan(hour=h, rates_rps={}, deployment=dep, evaluation=None, source="solved")

    hours = [at(0, 2), at(1, 3), at(2, 1)] + [at(h, 0) for h in range(3, 24)]
    out = sched._scale_ups(hours, catalog, 15.0)
    price = catalog.default_price("h100-sxm")
    assert price is not None
    assert out[0].scale_up_usd == pytest.approx(8 * price.usd_per_gpu_hour * 0.25, rel=1e-12)
    assert out[1].scale_up_usd == pytest.approx(4 * price.usd_per_gpu_hour * 0.25, rel=1e-12)
    assert all(h.scale_up_usd == 0 for h in out[2:])


@pytest.mark.parametrize("lead", [-1.0, 60.5, math.nan, math.inf])
def test_a_lead_time_outside_0_to_60_minutes_is_refused(lead: float) -> None:
    with pytest.raises(InputError, match="scale-up-lead-min"):
        sched.check_lead_time(lead)


def test_lead_time_bounds_are_accepted() -> None:
    sched.check_lead_time(0.0)
    sched.check_lead_time(60.0)


def test_a_zero_rate_hour_is_idle(catalog: Catalog) -> None:
    wl = workload(catalog, CHAT, [0.0] * 6 + [1.0] * 18)
    s = day_schedule(wl, catalog, size(wl, catalog, baselines=False).plan)
    assert [h.source for h in s.hours[:6]] == ["idle"] * 6
    assert all(h.usd_per_hour == 0 and not h.deployment.pools for h in s.hours[:6])
    assert s.hours[6].scale_up_usd > 0  # the morning starts every replica again


def test_a_link_that_carries_less_for_the_same_price_is_not_solved(catalog: Catalog) -> None:
    """A faster link whose ports cost no more carries every prefill replica type at least as well: the slower one
    is not solved. With the catalog's port prices the slower links' ports are cheaper, so every link stays."""
    wl = workload(catalog, CHAT, DAY, hardware={**CHAT["hardware"], "links": ["ib-ndr-400", "ethernet-25", "roce-200"]})
    rented = replace(wl, pricing=sched.ON_DEMAND)
    cands = enumerate_candidates(catalog, rented, ("prefill", "decode"), {"prefill": wl.prefill_gpus, "decode": wl.decode_gpus})
    assert undominated_links(cands, catalog) == ["ethernet-25", "ib-ndr-400", "roce-200"]
    # All-in ports at one price: the fastest link dominates the others.
    same = replace(catalog, links={k: replace(v, port_usd=1000.0) for k, v in catalog.links.items()})
    assert undominated_links(cands, same) == ["ib-ndr-400"]


def test_the_separated_hourly_mip_finds_the_joint_optimum(catalog: Catalog) -> None:
    """Without a limit that ties the roles, decode and (per link) prefill solved apart cost what one MIP does."""
    wl = workload(catalog, CHAT, DAY, hardware={**CHAT["hardware"], "links": ["roce-200", "ethernet-25"]})
    planner = sched._Planner(wl, catalog, "highs", sched._Clock(None))
    assert planner.separable
    rates = {"chat": 5.0}
    apart = planner.solve(rates, pooled=False)
    planner.separable, planner.links = False, {"roce-200", "ethernet-25"}
    joint = planner.solve(rates, pooled=False)
    assert apart is not None and joint is not None
    assert planner.static_key(apart)[0] == pytest.approx(planner.static_key(joint)[0], rel=1e-4)  # the MIP gap


def test_a_power_cap_solves_the_roles_together(catalog: Catalog) -> None:
    wl = workload(catalog, CHAT, DAY, constraints={"redundancy": 1, "power_cap_kw": 200})
    assert not sched._Planner(wl, catalog, "highs", sched._Clock(None)).separable


# ------------------------------------------------------------------------------------ the purchase MIP


def _brute_force(problem: PurchaseProblem) -> tuple[float, dict[str, tuple[int, ...]]]:
    """The cheapest owned counts, enumerated: per GPU type (costs add up per type) every non-decreasing sequence."""
    best: dict[str, tuple[int, ...]] = {}
    total = 0.0
    for gpu in problem.gpus:
        top = max(n for day in problem.need[gpu] for n in day) if problem.owned_usd_per_gpu_hour[gpu] is not None else 0
        options = []
        for seq in itertools.product(range(top + 1), repeat=problem.months):
            if all(a <= b for a, b in itertools.pairwise(seq)):
                one = PurchaseProblem(
                    need={gpu: problem.need[gpu]},
                    owned_usd_per_gpu_hour={gpu: problem.owned_usd_per_gpu_hour[gpu]},
                    on_demand_usd_per_gpu_hour={gpu: problem.on_demand_usd_per_gpu_hour[gpu]},
                    lead_time_h=problem.lead_time_h,
                )
                options.append((purchase_cost(one, {gpu: seq}), seq))
        cost, seq = min(options)
        best[gpu] = seq
        total += cost
    return total, best


def _need(seed: int, months: int, top: int) -> list[list[int]]:
    """A deterministic day shape per month: a base, a daytime bump, growth."""
    out = []
    for m in range(months):
        base = (seed + m) % 3
        out.append([min(top, base + (2 + m + seed % 2 if 8 <= h < 20 else 0) + (h % 5 == seed % 5)) for h in range(24)])
    return out


@pytest.mark.parametrize("lead_min", [0.0, 10.0, 60.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_purchase_mip_agrees_with_brute_force(seed: int, lead_min: float) -> None:
    problem = PurchaseProblem(
        need={"a100-sxm-80gb": _need(seed, 3, 5), "h100-sxm": _need(seed + 1, 3, 6)},
        owned_usd_per_gpu_hour={"a100-sxm-80gb": 2.70 * (0.5 + 0.1 * seed), "h100-sxm": 6.155 * 0.7},
        on_demand_usd_per_gpu_hour={"a100-sxm-80gb": 2.70, "h100-sxm": 6.155},
        lead_time_h=lead_min / 60.0,
    )
    plan = solve_purchase(problem)
    cost, owned = _brute_force(problem)
    assert plan.optimality == "optimal"
    assert plan.total_usd == pytest.approx(cost, rel=1e-6)
    assert plan.objective_usd == pytest.approx(cost, rel=1e-6)
    for gpu, seq in plan.owned.items():
        assert all(a <= b for a, b in itertools.pairwise(seq)), "never sold"
        assert purchase_cost(problem, {**owned, gpu: seq}) == pytest.approx(cost, rel=1e-6)


def test_purchase_hand_worked() -> None:
    """One type, one month: 2 GPUs all day and 2 more for 6 hours. At 60 % of the list price a GPU held 24 h
    costs 14.4 list-hours: worth owning for the base (24 h of need), not for the bump (6 h)."""
    day = [4 if 10 <= h < 16 else 2 for h in range(24)]
    problem = PurchaseProblem(
        need={"h100-sxm": [day]},
        owned_usd_per_gpu_hour={"h100-sxm": 0.6},
        on_demand_usd_per_gpu_hour={"h100-sxm": 1.0},
        lead_time_h=0.25,
    )
    plan = solve_purchase(problem)
    assert plan.owned == {"h100-sxm": (2,)}
    expected = DAYS_PER_MONTH * (2 * 24 * 0.6 + 2 * 6 * 1.0 + 2 * 0.25 * 1.0)
    assert plan.total_usd == pytest.approx(expected, rel=1e-12)
    cost = plan.costs["h100-sxm"][0]
    assert (cost.owned_gpu_hours_per_day, cost.on_demand_gpu_hours_per_day, cost.scale_up_gpus_per_day) == (48, 12, 2)


def test_a_type_without_an_owned_price_is_only_rented() -> None:
    problem = PurchaseProblem(
        need={"l40s": [[3] * 24]}, owned_usd_per_gpu_hour={"l40s": None}, on_demand_usd_per_gpu_hour={"l40s": 1.0}, lead_time_h=0
    )
    assert solve_purchase(problem).owned == {"l40s": (0,)}


def test_growth_buys_and_never_sells(chat_day: tuple[Workload, Schedule]) -> None:
    wl, s = chat_day
    assert wl.growth is not None and s.purchases is not None
    months = s.purchases.months
    assert [m.month for m in months] == list(range(wl.growth.months))
    assert s.purchases.planned_months[0] == 0 and s.purchases.planned_months[-1] == wl.growth.months - 1
    assert len(s.purchases.planned_months) <= sched.GROWTH_PLANNED_MONTHS
    for gpu in months[0].owned_gpus:
        owned = [m.owned_gpus[gpu] for m in months]
        assert all(a <= b for a, b in itertools.pairwise(owned))
        assert [m.bought_gpus[gpu] for m in months] == [b - a for a, b in zip([0, *owned], owned, strict=False)]
    for m in months:
        assert m.rate_multiplier == pytest.approx((1 + wl.growth.per_month_frac) ** m.month, rel=1e-12)
        assert m.planned_at_month >= m.month
    assert s.purchases.total_usd <= s.purchases.on_demand_only_usd
    # Month 0's need is today's scaled day.
    need0 = {g: [h.gpus().get(g, 0) for h in s.hours] for g in months[0].owned_gpus}
    for gpu, day in need0.items():
        served = sum(min(n, months[0].owned_gpus[gpu]) for n in day)
        assert months[0].owned_gpu_hours_per_day[gpu] == served


def test_growth_without_a_profile_plans_a_flat_day(catalog: Catalog) -> None:
    reserved = {"mode": "reserved", "discount_frac": 0.4}
    wl = workload(catalog, CHAT, None, growth={"per_month_frac": 0.1, "months": 3}, pricing=reserved)
    s = day_schedule(wl, catalog, size(wl, catalog, baselines=False).plan)
    assert s.flat and any("no class has a rate_profile" in w for w in s.warnings)
    assert s.purchases is not None
    # A flat day at 40 % off: every GPU any hour needs is needed all day, so owning it beats renting.
    for m in s.purchases.months:
        assert m.owned_gpus == m.peak_need_gpus
        assert sum(m.on_demand_gpu_hours_per_day.values()) == 0


# --------------------------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def schedule_json() -> dict[str, Any]:
    code, out, err = cli("size", str(CHAT_DAY), "--schedule", "-f", "json")
    assert code == 0, err
    return dict(json.loads(out))


def test_json_carries_the_schedule(schedule_json: dict[str, Any]) -> None:
    s = schedule_json["data"]["schedule"]
    assert len(s["hours"]) == 24
    for h in s["hours"]:
        assert set(h) >= {"hour", "rates_rps", "prefill_replicas", "decode_replicas", "prefill_gpus", "decode_gpus"}
        assert set(h) >= {"usd_per_hour", "scale_up_usd", "coupled", "fleet_usd_per_hour", "source", "pools"}
        assert h["num_gpus"] == sum(h["prefill_gpus"].values()) + sum(h["decode_gpus"].values())
    assert set(s) >= {"fleet", "scaled", "coupled", "peak_on_demand", "saving_usd_per_day", "apart_share_frac", "months"}
    for key in ("fleet", "scaled", "coupled", "peak_on_demand"):
        assert s[key]["usd_per_month"] == pytest.approx(s[key]["usd_per_day"] * 730 / 24, rel=1e-12)
    assert s["scaled"]["usd_per_day"] == pytest.approx(sum(h["usd_per_hour"] + h["scale_up_usd"] for h in s["hours"]))
    assert s["saving_usd_per_day"] == pytest.approx(s["fleet"]["usd_per_day"] - s["scaled"]["usd_per_day"])
    assert len(s["months"]) == 12 and s["purchases"]["optimality"] == "optimal"
    assert schedule_json["inputs"]["schedule"] == {"scale_up_lead_min": 10.0, "lead_time_assumed": True}
    # The plain plan is still there: the schedule adds to planner size's output.
    assert schedule_json["data"]["pools"] and schedule_json["data"]["baselines"]


def test_csv_has_a_row_per_hour_and_month(catalog: Catalog, chat_day: tuple[Workload, Schedule]) -> None:
    rows = schedule_csv_rows(schedule_data(chat_day[1]))
    assert [r["row"] for r in rows] == ["hour"] * 24 + ["day"] + ["month"] * 12
    assert len({tuple(r) for r in rows}) == 1  # every row has every column, in one order
    code, out, err = cli("size", str(CHAT_DAY), "--schedule", "-f", "csv")
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 37
    assert next(csv.reader(io.StringIO(out)))[-1] == "engine"
    assert table[0]["row"] == "hour" and table[0]["hour"] == "0" and table[24]["row"] == "day"


def test_the_table_shows_the_hours(run_cli: Run) -> None:
    code, out, err = run_cli("size", str(CHAT_DAY), "--schedule", "--scale-up-lead-min", "5")
    assert code == 0, err
    assert "a day of load" in out and "5 min scale-up lead time" in out
    assert "prefill replicas by hour" in out and "decode replicas by hour" in out
    assert "purchase schedule under growth" in out


def test_html_draws_the_replicas_by_hour(schedule_json: dict[str, Any]) -> None:
    from planner.report.html import size_html

    page = size_html(schedule_json, None)
    fig = page.split('<figure id="chart-schedule">', 1)[1].split("</figure>", 1)[0]
    for label in ("replicas (count)", "cost (USD/hour)", "hour of the day", "prefill (scaled)", "decode (scaled)"):
        assert label in fig
    assert "A day of load" in page and "Purchase schedule under growth" in page


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((str(CHATBOT), "--schedule"), "the day is flat"),
        ((str(CHAT_DAY), "--schedule", "--scale-up-lead-min", "90"), "between 0 and 60"),
        ((str(CHAT_DAY), "--schedule", "--scale-up-lead-min", "-5"), "between 0 and 60"),
        ((str(CHAT_DAY), "--schedule", "--scale-up-lead-min", "nan"), "between 0 and 60"),
        ((str(CHAT_DAY), "--schedule", "--scale-up-lead-min", "1e400"), "between 0 and 60"),
        ((str(CHAT_DAY), "--schedule", "--scale-up-lead-min", "abc"), "--scale-up-lead-min"),
        ((str(CHAT_DAY), "--scale-up-lead-min", "5"), "needs --schedule"),
    ],
)
def test_bad_schedule_input_is_one_error_line(run_cli: Run, args: tuple[str, ...], needle: str) -> None:
    assert_input_error(run_cli("size", *args), needle)


@pytest.mark.slow
def test_schedule_json_is_byte_identical_on_repeat(schedule_json: dict[str, Any]) -> None:
    code, out, err = cli("size", str(CHAT_DAY), "--schedule", "-f", "json")
    assert code == 0, err
    assert json.loads(out) == schedule_json
    code, again, _ = cli("size", str(CHAT_DAY), "--schedule", "-f", "json")
    assert again == out
