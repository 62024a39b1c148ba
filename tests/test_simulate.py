"""``planner simulate``: the engine's mechanics worked out by hand, the analytic model against the
simulation for every example's optimal plan, and the command (JSON keys, determinism, bad input,
saturation, ``planner size --verify``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import Lazy, Run, assert_input_error

from planner import api
from planner.domain import Catalog
from planner.perf.evaluate import make_replica
from planner.perf.memory import kv_bytes_per_token
from planner.perf.transfer import kv_transfer_s, link_effective_bytes_per_s
from planner.sim import SimOptions, quantile, simulate
from planner.sim.arrivals import Requests, generate
from planner.sim.engine import CoreSteps, Options, PoolConfig, run

# These tests check the core's mechanics on figures worked out under the 2023 Splitwise engine
# profile; they pin it (the default engine's figures are in test_engine_profiles.py and the README).
ENGINE = "splitwise"


@pytest.fixture(scope="session")
def catalog(splitwise_catalog: Catalog) -> Catalog:
    return splitwise_catalog


REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "workloads"


def one_class_requests(arrivals: list[float], lin: list[int], lout: list[int]) -> Requests:
    n = len(arrivals)
    return Requests(
        arrival_s=np.array(arrivals, dtype=float),
        input_tokens=np.array(lin, dtype=np.int64),
        output_tokens=np.array(lout, dtype=np.int64),
        class_index=np.zeros(n, dtype=np.int64),
        route_u=np.zeros((n, 2)),
    )


class FixedSteps:
    """Hand-checkable step times: prefill 1 ms per 1,000 tokens, decode 10 ms, mixed 20 ms."""

    def __init__(self, max_kv_tokens: int = 10**9) -> None:
        self._kv = max_kv_tokens

    @property
    def max_kv_tokens(self) -> int:
        return self._kv

    def prefill_s(self, tokens: int, sq_tokens: float, prompts: int) -> float:
        return tokens * 1e-6

    def decode_batch_s(self, batch: int, total_context_tokens: float) -> float:
        return 0.010

    def mixed_batch_s(self, chunk_tokens: int, sq_tokens: float, batch: int, total_context_tokens: float) -> float:
        return 0.020


def two_pools(steps: FixedSteps, **prefill: float) -> list[PoolConfig]:
    return [
        PoolConfig(key="p", role="prefill", replicas=1, steps=steps, **prefill),  # type: ignore[arg-type]
        PoolConfig(key="d", role="decode", replicas=1, steps=steps, max_batch=8),
    ]


# ------------------------------------------------------------------------------- engine mechanics


def test_decode_table_matches_the_performance_core(catalog: Catalog) -> None:
    proposal = api.load_proposal(REPO / "examples" / "proposals" / "chatbot.yaml", catalog)
    rep = make_replica(catalog, proposal.workload, "h100-sxm", 4)
    assert rep is not None
    steps = CoreSteps(rep, 64)
    for b in (1, 7, 32, 64):
        for ctx in (100.0, 2150.0, 9000.0):
            assert steps.decode_batch_s(b, b * ctx) == pytest.approx(rep.decode_s(b, ctx), rel=1e-9)
    assert steps.prefill_s(1500, 1500.0**2, 1) == pytest.approx(rep.prefill_s(1500), rel=1e-12)


def test_lone_request_ttft_is_prefill_plus_exposed_kv_plus_first_step(catalog: Catalog) -> None:
    """Alone on the link, the layer-wise transfer exposes exactly what perf.transfer says."""
    proposal = api.load_proposal(REPO / "examples" / "proposals" / "chatbot.yaml", catalog)
    wl = proposal.workload
    model = catalog.models[wl.model]
    link = catalog.links["ib-ndr-400"]
    pre = make_replica(catalog, wl, "h100-sxm", 8)
    dec = make_replica(catalog, wl, "h100-sxm", 4)
    assert pre is not None and dec is not None
    for tokens in (500, 30_000):  # transfer hidden by the prefill, and outlasting it
        pools = [
            PoolConfig(
                key="p",
                role="prefill",
                replicas=1,
                steps=CoreSteps(pre, 1),
                kv_bytes_per_token=kv_bytes_per_token(model, wl.precision),
                link_bytes_per_s=8 * link_effective_bytes_per_s(link, catalog.engine),
                num_layers=model.num_layers,
            ),
            PoolConfig(key="d", role="decode", replicas=1, steps=CoreSteps(dec, 64), max_batch=64),
        ]
        req = one_class_requests([0.0], [tokens], [3])
        res = run(req, pools, [[(0, 1.0)]], [[(1, 1.0)]], Options(warmup_frac=0.0))
        prefill = pre.prefill_s(tokens)
        kv = kv_transfer_s(model, link, catalog.engine, precision=wl.precision, prompt_tokens=tokens, tp=8, prefill_s=prefill)
        first = dec.decode_s(1, tokens)
        assert res.first_token_s[0] == pytest.approx(prefill + kv + first, rel=1e-9)
        # Two more tokens, at contexts tokens+1 and tokens+2.
        rest = dec.decode_s(1, tokens + 1) + dec.decode_s(1, tokens + 2)
        assert res.done_s[0] - res.first_token_s[0] == pytest.approx(rest, rel=1e-9)


def test_concurrent_transfers_share_the_link() -> None:
    """Processor sharing: prompt 0's transfer (1 MB at 1 MB/s, all of it after its prefill with one
    layer) runs alone from 1 ms to 2 ms, then shares the link with prompt 1's: it ends at 2.000 s
    (1.001 s if it had the link to itself), prompt 1's at 2.001 s."""
    steps = FixedSteps()
    pools = two_pools(steps, kv_bytes_per_token=1000.0, link_bytes_per_s=1e6, num_layers=1)
    req = one_class_requests([0.0, 0.0], [1000, 1000], [1, 1])
    res = run(req, pools, [[(0, 1.0)]], [[(1, 1.0)]], Options(warmup_frac=0.0))
    np.testing.assert_allclose(res.prefill_start_s, [0.0, 0.001], atol=1e-12)
    # First tokens: 2.000 + a 10 ms decode step; prompt 1 (KV at 2.001) joins the next iteration.
    np.testing.assert_allclose(res.first_token_s, [2.010, 2.020], rtol=1e-9)


def test_prefill_batching_under_a_token_budget() -> None:
    steps = FixedSteps()
    req = one_class_requests([0.0, 0.0, 0.0, 0.0], [3000, 500, 500, 800], [1, 1, 1, 1])
    res = run(req, two_pools(steps), [[(0, 1.0)]], [[(1, 1.0)]], Options(warmup_frac=0.0, prefill_token_budget=1000))
    # The first prompt starts alone (3 ms); then 500 + 500 fill the 1,000-token budget (1 ms); 800 alone.
    np.testing.assert_allclose(res.prefill_start_s, [0.0, 0.003, 0.003, 0.004], atol=1e-12)
    default = run(req, two_pools(steps), [[(0, 1.0)]], [[(1, 1.0)]], Options(warmup_frac=0.0))
    np.testing.assert_allclose(default.prefill_start_s, [0.0, 0.003, 0.0035, 0.004], atol=1e-12)


def test_continuous_batching_and_tpot() -> None:
    """Two requests share decode iterations of 10 ms; the later one joins at an iteration boundary."""
    steps = FixedSteps()
    req = one_class_requests([0.0, 0.0101], [1000, 1000], [10, 5])
    res = run(req, two_pools(steps), [[(0, 1.0)]], [[(1, 1.0)]], Options(warmup_frac=0.0))
    # Request 0: prefill ends 1 ms, first token 11 ms, 9 more iterations: done 101 ms.
    assert res.first_token_s[0] == pytest.approx(0.011)
    assert res.done_s[0] == pytest.approx(0.101)
    # Request 1: prefill ends 11.1 ms, joins the iteration starting at 21 ms: first token 31 ms.
    assert res.first_token_s[1] == pytest.approx(0.031)
    assert res.done_s[1] == pytest.approx(0.071)


def test_admission_waits_while_the_kv_cache_is_full() -> None:
    steps = FixedSteps(max_kv_tokens=1500)  # one request of 1000 + 10 tokens at a time
    req = one_class_requests([0.0, 0.0], [1000, 1000], [10, 10])
    res = run(req, two_pools(steps), [[(0, 1.0)]], [[(1, 1.0)]], Options(warmup_frac=0.0))
    assert res.first_token_s[1] > res.done_s[0]
    assert res.first_token_s[1] == pytest.approx(res.done_s[0] + 0.010)


def test_colocated_chunked_prefill() -> None:
    """Budget 512, nothing decoding: a 1,200-token prompt takes 3 mixed iterations (20 ms each),
    then decodes its remaining tokens in 10 ms iterations."""
    steps = FixedSteps()
    pools = [PoolConfig(key="c", role="colocated", replicas=1, steps=steps, max_batch=8, token_budget=512)]
    req = one_class_requests([0.0], [1200], [4])
    res = run(req, pools, [[(0, 1.0)]], [[]], Options(warmup_frac=0.0))
    assert res.first_token_s[0] == pytest.approx(0.060)
    assert res.done_s[0] == pytest.approx(0.090)


def test_generated_arrivals_follow_rate_and_burstiness(catalog: Catalog) -> None:
    wl = api.resolve_workload(
        api.workload_spec_from_flags(
            model="llama-3.1-8b", rate_rps=50, isl=1000, osl=100, ttft_p99_ms=500, tpot_p99_ms=50, interarrival_cv2=4.0
        ),
        catalog,
    )
    a = generate(wl, 50_000, seed=3)
    b = generate(wl, 50_000, seed=3)
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
    gaps = np.diff(a.arrival_s)
    rate_rps = 1 / gaps.mean()
    assert rate_rps == pytest.approx(50, rel=0.05)
    assert gaps.var() / gaps.mean() ** 2 == pytest.approx(4.0, rel=0.1)
    assert set(a.input_tokens.tolist()) == {1000}


def test_quantile_treats_unfinished_as_infinite() -> None:
    assert quantile(np.array([1.0, 2.0, 3.0, 4.0]), 0.5) == pytest.approx(2.5)
    assert math.isinf(quantile(np.array([1.0, 2.0, math.inf]), 0.99))


# ----------------------------------------------------------------- analytic against simulation

CROSS_REQUESTS = 20_000
# deepseek_r1_wide_ep is left out: its plan is 380 H800 nodes of multi-node expert-parallel replicas at 1,968 req/s
# under a price basis it opts into; the simulator's cross-check is of single-node replicas (README, cross-check)
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.yaml") if p.stem != "deepseek_r1_wide_ep")
FAST_EXAMPLE = "chatbot"  # the default lane cross-checks this example; the full lane every one


@pytest.fixture(scope="module")
def example_sims() -> dict[str, object]:
    """Each example's optimal plan (20,000 requests, seed 1, JSQ routing, the workload's redundancy
    out of service), simulated on first use."""
    cat = api.load_catalog(())

    def run(name: str) -> object:
        path = EXAMPLES / f"{name}.yaml"
        wl = api.resolve_workload(api.load_workload_spec(path), cat, str(path))
        plan = api.size(wl, cat)
        return simulate(wl, plan.plan.deployment, cat, SimOptions(requests=CROSS_REQUESTS, seed=1))

    return Lazy(run)


# The analytic TPOT solves the Little's-law fixed point for the decode occupancy (it used to take
# the occupancy at the batch cap: +31 % on code_completion); every example is within 20 %
# (docs/simulate.md).
@pytest.mark.parametrize(
    ("example", "metric"),
    [pytest.param(e, m, marks=() if e == FAST_EXAMPLE else pytest.mark.slow) for e in NAMES for m in ("ttft", "tpot")],
)
def test_analytic_p99_within_20pct_of_simulation(example_sims: dict[str, object], example: str, metric: str) -> None:
    """Within 20 % where a class has its prefill pools to itself. A class that shares a prefill pool with
    other classes gets a share of its replicas in the analytic model (a partition), while the simulator
    queues every class's prompts together, so its analytic TTFT may be far above the simulated one
    (multi_class's batch-eval under one GPU type per role: 4.1 s vs 0.8 s at p90): there it must not be
    more than 20 % below (optimistic), the direction that would make a plan late (README, cross-check)."""
    sim = example_sims[example]
    routing = sim.analytic.routing  # type: ignore[attr-defined]
    prefill_pools = {
        name: {key for key, share in pools.items() if share > 0 and not key.startswith("decode__")}
        for name, pools in routing.items()
    }
    for a, s in zip(sim.analytic.classes, sim.classes, strict=True):  # type: ignore[attr-defined]
        analytic = a.ttft_at_slo_s if metric == "ttft" else a.tpot_at_slo_s
        simulated = s.ttft.at_slo if metric == "ttft" else s.tpot.at_slo
        shared = any(prefill_pools[a.name] & pools for other, pools in prefill_pools.items() if other != a.name)
        if metric == "ttft" and shared:
            assert analytic >= 0.8 * simulated, (a.name, analytic, simulated)
        else:
            assert analytic == pytest.approx(simulated, rel=0.20), (a.name, analytic, simulated)


@pytest.mark.slow
def test_example_plans_are_stable_in_simulation(example_sims: dict[str, object]) -> None:
    for name in NAMES:
        sim = example_sims[name]
        assert not sim.saturated, name  # type: ignore[attr-defined]
        assert sim.overall.completed == sim.overall.num_requests, name  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------- command

CHATBOT_PROPOSAL = REPO / "examples" / "proposals" / "chatbot.yaml"


def test_simulate_json_keys_and_determinism(run_cli: Run) -> None:
    args = ("simulate", str(CHATBOT_PROPOSAL), "--requests", "3000", "--seed", "7", "--format", "json")
    code, out, err = run_cli(*args)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["command"] == "simulate" and doc["status"] == "ok"
    d = doc["data"]
    for key in ("ttft_ms", "tpot_ms", "e2e_ms"):
        assert set(d[key]) >= {"p50", "p90", "p99"}
    assert 0.9 <= d["slo_attainment_frac"] <= 1.0
    assert d["saturated"] is False
    assert d["analytic"]["ttft_at_slo_ms"] > 0 and d["analytic"]["by_class"][0]["tpot_at_slo_pct_ms"]["rel_diff"] is not None
    assert {p["role"] for p in d["pools"]} == {"prefill", "decode"}
    code2, out2, _ = run_cli(*args)
    assert code2 == 0 and out2 == out  # same input and seed: byte-identical


@pytest.mark.slow
def test_simulate_a_plan_file_round_trip(run_cli: Run, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    code, _, err = run_cli("size", str(EXAMPLES / "code_completion.yaml"), "--format", "yaml", "-o", str(plan))
    assert code == 0, err
    code, out, err = run_cli("simulate", str(plan), "-n", "2000", "--routing", "rr", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["data"]["simulation"]["routing"] == "rr"


def test_simulate_a_trace(run_cli: Run, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    rows = [f"{i * 0.1:.3f},{1000 + 10 * i},{50 + i}" for i in range(300)]
    trace.write_text("timestamp,input_tokens,output_tokens\n" + "\n".join(rows) + "\n")
    code, out, err = run_cli("simulate", str(CHATBOT_PROPOSAL), "--trace", str(trace), "--format", "json")
    assert code == 0, err
    d = json.loads(out)["data"]
    assert d["simulation"]["requests"] == 300 and d["simulation"]["source"] == str(trace)
    assert d["completed"] == 270  # 10% warm-up left out


def test_saturated_plan_is_reported_not_hung(run_cli: Run, tmp_path: Path) -> None:
    proposal = tmp_path / "small.yaml"
    proposal.write_text(
        f"workload: {EXAMPLES / 'chatbot.yaml'}\n"
        "pools:\n"
        "  - {role: prefill, gpu: h100-sxm, tp: 8, replicas: 2, link: ib-ndr-400}\n"
        "  - {role: decode, gpu: h100-sxm, tp: 4, replicas: 10, max_batch: 64}\n"
    )
    code, out, err = run_cli("simulate", str(proposal), "-n", "4000", "--out-of-service", "0", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["data"]["saturated"] is True
    assert doc["data"]["saturated_pools"] == ["prefill__h100-sxm__tp8__b1__ib-ndr-400"]
    assert doc["data"]["meets_slo"] is False
    assert any("saturated" in w for w in doc["warnings"])
    assert "warning: pool prefill__h100-sxm__tp8__b1__ib-ndr-400 is saturated" in err
    # A time cap stops the run and says so.
    code, out, err = run_cli(
        "simulate", str(proposal), "-n", "4000", "--out-of-service", "0", "--time-cap-s", "100", "--format", "json"
    )
    assert code == 0, err
    d = json.loads(out)["data"]
    assert d["stop_reason"].startswith("time_cap") and d["completed"] < d["num_requests"]
    assert d["ttft_ms"]["p99"] is None  # unfinished requests: an unbounded percentile


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("missing.yaml",), "missing.yaml"),
        ((str(CHATBOT_PROPOSAL), "--routing", "random"), "--routing random"),
        ((str(CHATBOT_PROPOSAL), "--requests", "0"), "--requests 0"),
        ((str(CHATBOT_PROPOSAL), "--warmup-frac", "1.5"), "--warmup-frac"),
        ((str(CHATBOT_PROPOSAL), "--out-of-service", "7"), "none left in service"),
        ((str(CHATBOT_PROPOSAL), "--trace", "nope.csv"), "nope.csv"),
    ],
)
def test_bad_input_is_one_error_line(run_cli: Run, args: tuple[str, ...], needle: str) -> None:
    assert_input_error(run_cli("simulate", *args), needle)


def test_size_verify_adds_attainment(run_cli: Run) -> None:
    code, out, err = run_cli("size", str(EXAMPLES / "chatbot.yaml"), "--verify", "--format", "json")
    assert code == 0, err
    v = json.loads(out)["data"]["verification"]
    assert v["requests"] == 10_000 and v["out_of_service"] == 1
    assert v["meets_slo"] is True and v["slo_attainment_frac"] >= 0.99
    assert v["by_class"][0]["ttft_at_slo_pct_ms"] <= 1000.0
