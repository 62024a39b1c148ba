"""Data-parallel attention prefill (issue 13): a prompt is prefilled by one attention group, so its latency is longer
than the replica's busy time per prompt; hand-worked on a toy MoE, then the planner's TTFT, the largest rate and the
fixed-concurrency model on DeepSeek-V3."""

from __future__ import annotations

import pytest
from test_perf import TOY_EFF
from test_wide_ep import NODE4, TOY_WIDE, _workload

from planner.io.catalog import load_catalog
from planner.perf.evaluate import make_replica
from planner.perf.roofline import Hardware, step
from planner.perf.serve import serve_disaggregated
from planner.perf.serving import prefill_max_rate, prefill_service, prefill_ttft


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog(())


def _prefill(hw: Hardware, groups: int) -> float:
    return step(
        TOY_WIDE, hw, tp=8, precision="bf16", prefill_tokens=1000, prefill_sq_tokens=1e6, num_prompts=1, prompt_groups=groups
    ).compute_s


def test_one_prompt_on_one_group_hand_worked() -> None:
    hw = Hardware(NODE4, TOY_EFF, 1e11, attention_dp=8, moe_ep=8, expert_link_bytes_per_s=5e9)
    # 16 experts, 2 per token: one expert 3e10/14 parameters, the routed active 2 of them; the rest of the 1e10
    # active parameters (5.714e9) is the non-expert work a prompt's own group does. 1,000 tokens: GEMMs
    # 2 x 5.714e9 x 1,000 at compute_frac 0.5, attention 2 x 10 layers x 1,000 wide x 1e6 at 0.25.
    own = (2 * (1e10 - 2 * 3e10 / 14) * 1000 / 0.5 + 2 * 10 * 1000 * 1e6 / 0.25) / (8 * 1e15)
    spread = _prefill(hw, 0)  # the throughput view: the prompt's work spread over the 8 groups
    assert _prefill(hw, 1) - spread == pytest.approx(7 * own, rel=1e-12)  # its group does 8x its even share
    assert _prefill(hw, 4) - spread == pytest.approx(1 * own, rel=1e-12)  # 4 groups hold the tokens: 2x
    assert _prefill(hw, 8) == spread
    plain = Hardware(NODE4, TOY_EFF, 1e11)  # one attention group: prompt_groups changes nothing
    assert _prefill(plain, 1) == _prefill(plain, 0)


def test_prompt_latency_between_alone_and_every_group_busy(catalog) -> None:  # type: ignore[no-untyped-def]
    ds = _workload(catalog, "deepseek-v3")
    rep = make_replica(catalog, ds, "h200-sxm", 8, attention_dp=8, moe_ep=8)
    assert rep is not None and rep.attention_groups == 8
    spread, alone, full = rep.prefill_s(4000), rep.prompt_latency_s(4000, 0, 0.0), rep.prompt_latency_s(4000, 0, 1.0)
    assert spread < alone < full
    # every group prefilling a prompt of its own: close to 8 prompts' worth of replica time (compute-bound), less
    # the fixed costs and collectives 8 separate prefills would each pay
    assert 0.8 * 8 * spread < full < 8 * spread
    assert rep.prompt_latency_s(4000, 0, 0.5) == pytest.approx(0.5 * (alone + full), rel=1e-12)
    tp = make_replica(catalog, ds, "h200-sxm", 8, moe_ep=8)  # tensor-parallel attention: latency = busy time
    assert tp is not None and tp.prompt_latency_s(4000, 0, 1.0) == tp.prefill_s(4000)


def test_largest_rate_is_the_fixed_point_of_the_utilization(catalog) -> None:  # type: ignore[no-untyped-def]
    ds = _workload(catalog, "deepseek-v3")
    cls = ds.classes[0]
    rep = make_replica(catalog, ds, "h100-sxm", 16, attention_dp=16, moe_ep=16)
    assert rep is not None
    svc = prefill_service(rep, cls, None)
    assert svc.idle_saving_s is not None and (svc.idle_saving_s > 0).all()
    rate = prefill_max_rate(svc, cls, 0.0)
    assert rate > 0
    # at that rate the TTFT percentile sits on the target; a little more and it is missed
    assert prefill_ttft(svc, cls, rate, 0.0).pct_s == pytest.approx(cls.slo.ttft_s, rel=1e-3)
    assert prefill_ttft(svc, cls, rate * 1.01, 0.0).pct_s > cls.slo.ttft_s
    # the bound every-group-busy gives is below it (prefill_ttft takes the utilization's share of the idle saving)
    idle = prefill_ttft(svc, cls, 1e-9, 0.0)
    assert idle.p50_s < float(svc.exposed_s.mean())


def test_fixed_concurrency_prompt_waits_on_its_own_group(catalog) -> None:  # type: ignore[no-untyped-def]
    ds = _workload(catalog, "deepseek-v3")
    dp = make_replica(catalog, ds, "h200-sxm", 8, attention_dp=8, moe_ep=8)
    dec = make_replica(catalog, ds, "h200-sxm", 8, attention_dp=8, moe_ep=8)
    assert dp is not None and dec is not None
    one = serve_disaggregated(dp, 1, dec, 1, isl=8192, osl=1024, concurrency=1, link=None)
    alone = dp.prompt_latency_s(8192, 0, 0.0)
    # one client: its prompt runs alone on one group, far longer than the replica's busy time per prompt
    assert one.ttft.mean_s > alone > 4 * dp.prefill_s(8192)
    many = serve_disaggregated(dp, 1, dec, 1, isl=8192, osl=1024, concurrency=64, link=None)
    assert many.ttft.mean_s > one.ttft.mean_s
