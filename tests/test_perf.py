"""The analytic performance core: memory fit, roofline step times, queueing (planner.perf)."""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import NormalDist

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planner import api
from planner.domain import Catalog, Efficiency, GpuSpec, ModelSpec, Pricing
from planner.errors import DoesNotFitError, InputError, UnsupportedPrecisionError
from planner.perf import cost, power, queueing
from planner.perf.memory import check_tp, kv_bytes_per_token, memory_fit, require_fit, weight_bytes
from planner.perf.roofline import (
    GEMM_SHAPE_MIN_DIM,
    Hardware,
    allreduce_s,
    curve_latency_s,
    decode_step,
    expert_weight_bytes_touched,
    gemm_compute_frac,
    gemm_dim_share,
    gemm_shapes,
    overlap_s,
    prefill_step,
)
from planner.perf.serve import chunk_sizes
from planner.perf.transfer import intra_node_bandwidth_bytes_per_s, kv_transfer_s

GIB = 2**30
HYP = settings(max_examples=60, deadline=None)

# --------------------------------------------------------------------------- synthetic hardware
# Round numbers so every step time below can be worked out by hand.

TOY_GPU = GpuSpec(
    id="toy-gpu",
    name="Toy GPU",
    bf16_flop_per_s=1e15,
    fp16_flop_per_s=1e15,
    fp8_flop_per_s=2e15,
    hbm_capacity_bytes=80 * GIB,
    hbm_bandwidth_bytes_per_s=1e12,
    tdp_w=700,
    idle_w=100,
    decode_busy_w=400,
    nvlink_bytes_per_s=1e11,
    pcie_generation=5,
    gpus_per_node=8,
    nvlink_domain_gpus=8,
)
TOY_MODEL = ModelSpec(
    id="toy-10b",
    name="Toy 10B",
    num_params=1e10,
    num_active_params=1e10,
    num_layers=10,
    hidden_size=1000,
    intermediate_size=4000,
    num_attention_heads=10,  # query width 10*100 = hidden_size, as in Llama
    num_kv_heads=2,
    head_dim=100,
    vocab_size=32000,
    max_context_tokens=32768,
)
TOY_EFF = Efficiency(
    gpu="toy-gpu",
    compute_frac=0.5,
    attention_compute_frac=0.25,
    memory_frac=0.8,
    prefill_fixed_s=1e-3,
    decode_fixed_s=2e-3,
    decode_per_seq_s=1e-4,
    allreduce_latency_s=1e-5,
    allreduce_bandwidth_frac=0.5,
    fitted_on="synthetic",
)
TOY_HW = Hardware(TOY_GPU, TOY_EFF, 1e11)
ZERO_OVERHEAD = replace(TOY_EFF, prefill_fixed_s=0.0, decode_fixed_s=0.0, decode_per_seq_s=0.0, allreduce_latency_s=0.0)


def test_toy_kv_bytes() -> None:
    # 2 (K and V) * 10 layers * 2 kv heads * 100 head dim * 2 bytes
    assert kv_bytes_per_token(TOY_MODEL, "bf16") == 8000


def test_hand_computed_decode_step() -> None:
    """tp 4, batch 10, context 1000 on the toy replica."""
    s = decode_step(TOY_MODEL, TOY_HW, tp=4, precision="bf16", batch=10, context_tokens=1000)
    # FLOPs: GEMMs 2*1e10*10 = 2e11; attention 4*10 layers*1000 query width (10 heads*100)*(10*1000 context) = 4e8
    assert s.flops == pytest.approx(2e11 + 4e8, rel=1e-12)
    # compute: (2e11/0.5 + 4e8/0.25) / (4 * 1e15) = 4.016e11 / 4e15
    assert s.compute_s == pytest.approx(1.004e-4, rel=1e-12)
    # bytes: weights 1e10*2 + KV 8000 B/token * 10 * 1000 tokens, read twice: 2 KV heads on 4 GPUs put each head
    # on two of them (kv_replication) = 2.016e10; / (4 * 0.8 * 1e12)
    assert s.bytes_moved == pytest.approx(2.016e10, rel=1e-12)
    assert s.memory_s == pytest.approx(6.3e-3, rel=1e-12)
    # one all-reduce of 10 tokens * 1000 * 2 B = 2e4 B: 2*3/4*2e4/(0.5*1e11) + 1e-5*log2(4) = 6e-7 + 2e-5
    assert allreduce_s(2e4, 4, TOY_HW) == pytest.approx(2.06e-5, rel=1e-12)
    # two per layer, 10 layers
    assert s.comm_s == pytest.approx(4.12e-4, rel=1e-12)
    # overhead: 2 ms fixed + 0.1 ms * 10 sequences
    assert s.overhead_s == pytest.approx(3e-3, rel=1e-12)
    # latency: max(compute, memory) + comm + overhead = 6.3 + 0.412 + 3 ms
    assert s.latency_s == pytest.approx(9.712e-3, rel=1e-12)
    assert s.bound == "memory"  # 6.3 ms memory vs 3.412 ms overhead+comm vs 0.1 ms compute
    assert s.throughput_tokens_per_s == pytest.approx(10 / 9.712e-3, rel=1e-12)
    assert s.mfu_frac == pytest.approx(2.004e11 / (9.712e-3 * 4e15), rel=1e-12)
    assert s.mbu_frac == pytest.approx(2.016e10 / (9.712e-3 * 4e12), rel=1e-12)
    assert s.batch == 10
    assert s.tokens == 10
    assert s.phase == "decode"


def test_hand_computed_prefill_step() -> None:
    """tp 2, 2 prompts of 1000 tokens on the toy replica."""
    s = prefill_step(TOY_MODEL, TOY_HW, tp=2, precision="bf16", prompt_tokens=1000, batch=2)
    # GEMMs 2*1e10*2000 = 4e13; attention 2*10*1000*(2 * 1000**2) = 4e10
    assert s.flops == pytest.approx(4.004e13, rel=1e-12)
    # (4e13/0.5 + 4e10/0.25) / (2*1e15) = 8.016e13 / 2e15
    assert s.compute_s == pytest.approx(0.04008, rel=1e-12)
    assert s.memory_s == pytest.approx(2e10 / 1.6e12, rel=1e-12)
    # all-reduce of 2000*1000*2 = 4e6 B over 2 GPUs: 1*4e6/5e10 + 1e-5*1 = 9e-5; 20 of them
    assert s.comm_s == pytest.approx(1.8e-3, rel=1e-12)
    assert s.overhead_s == pytest.approx(1e-3, rel=1e-12)
    assert s.latency_s == pytest.approx(0.04288, rel=1e-12)
    assert s.bound == "compute"
    assert s.throughput_tokens_per_s == pytest.approx(2000 / 0.04288, rel=1e-12)
    assert s.batch == 2
    assert s.tokens == 2000
    assert s.phase == "prefill"


def test_allreduce_is_free_at_tp1() -> None:
    assert allreduce_s(1e9, 1, TOY_HW) == 0.0
    s = decode_step(TOY_MODEL, TOY_HW, tp=1, precision="bf16", batch=4, context_tokens=100)
    assert s.comm_s == 0.0


def test_allreduce_ring_formula_tp8() -> None:
    # 2*7/8 * 1e6 / (0.5 * 1e11) + 1e-5 * 3
    assert allreduce_s(1e6, 8, TOY_HW) == pytest.approx(1.75e6 / 5e10 + 3e-5, rel=1e-12)


def test_bound_large_prefill_is_compute() -> None:
    s = prefill_step(TOY_MODEL, TOY_HW, tp=8, precision="bf16", prompt_tokens=8192, batch=8)
    assert s.bound == "compute"
    assert s.compute_s > s.memory_s


def test_bound_small_decode_without_overheads_is_memory() -> None:
    hw = Hardware(TOY_GPU, ZERO_OVERHEAD, 1e11)
    s = decode_step(TOY_MODEL, hw, tp=1, precision="bf16", batch=1, context_tokens=512)
    assert s.bound == "memory"
    assert s.latency_s == pytest.approx(s.memory_s, rel=1e-12)


def test_bound_tiny_model_big_overhead() -> None:
    tiny = replace(TOY_MODEL, id="tiny", num_params=1e6, num_active_params=1e6, num_layers=2, hidden_size=64)
    hw = Hardware(TOY_GPU, replace(TOY_EFF, decode_fixed_s=0.05, prefill_fixed_s=0.05), 1e11)
    assert decode_step(tiny, hw, tp=1, precision="bf16", batch=4, context_tokens=128).bound == "overhead"
    assert prefill_step(tiny, hw, tp=1, precision="bf16", prompt_tokens=128).bound == "overhead"


def test_fp8_halves_weight_and_kv_bytes_in_a_step() -> None:
    b16 = decode_step(TOY_MODEL, TOY_HW, tp=1, precision="bf16", batch=8, context_tokens=1000)
    f8 = decode_step(TOY_MODEL, TOY_HW, tp=1, precision="fp8", batch=8, context_tokens=1000)
    assert f8.bytes_moved == pytest.approx(b16.bytes_moved / 2, rel=1e-12)
    assert f8.flops == b16.flops


# --------------------------------------------------------------------------- catalog models


def test_kv_bytes_per_token(catalog: Catalog) -> None:
    m70, m8 = catalog.models["llama-3.1-70b"], catalog.models["llama-3.1-8b"]
    assert kv_bytes_per_token(m70, "bf16") == 327680  # 2*80*8*128*2
    assert kv_bytes_per_token(m8, "bf16") == 131072  # 2*32*8*128*2
    assert kv_bytes_per_token(m70, "fp8") == 163840
    assert kv_bytes_per_token(m8, "fp8") == 65536


def test_weight_bytes(catalog: Catalog) -> None:
    m70 = catalog.models["llama-3.1-70b"]
    assert weight_bytes(m70, "bf16") == 141107412992
    assert weight_bytes(m70, "fp8") == 70553706496
    assert weight_bytes(catalog.models["llama-3.1-8b"], "bf16") == 16060522496
    mix = catalog.models["mixtral-8x7b"]
    assert weight_bytes(mix, "bf16") == 2 * mix.num_params  # every expert is resident


def test_70b_does_not_fit_on_one_h100(catalog: Catalog) -> None:
    m, g = catalog.models["llama-3.1-70b"], catalog.gpus["h100-sxm"]
    fit = memory_fit(m, g, catalog.engine, 1, "bf16")
    assert not fit.fits
    assert fit.usable_bytes == pytest.approx(0.9 * 79.18 * GIB, rel=1e-12)  # vLLM's 0.9 of the CUDA-visible 79.18 GiB
    with pytest.raises(DoesNotFitError) as info:
        require_fit(m, g, catalog.engine, 1, "bf16")
    assert "does not fit on 1x h100-sxm" in info.value.message
    assert info.value.hint == "it fits at --tp 2 or 4 or 8"


def test_405b_fits_on_no_h100_node_in_bf16(catalog: Catalog) -> None:
    m, g = catalog.models["llama-3.1-405b"], catalog.gpus["h100-sxm"]
    with pytest.raises(DoesNotFitError) as info:
        require_fit(m, g, catalog.engine, 8, "bf16")
    assert info.value.hint is not None
    assert "fits on no h100-sxm node" in info.value.hint
    assert require_fit(m, g, catalog.engine, 8, "fp8").fits


@pytest.mark.parametrize(("tp", "kv_tokens", "max_batch"), [(2, 27344, 13), (4, 486000, 237), (8, 1402624, 684)])
def test_70b_memory_fit_and_max_batch(catalog: Catalog, tp: int, kv_tokens: int, max_batch: int) -> None:
    """vLLM's pool on each of tp H100s (M = 79.18 GiB CUDA-visible): 0.9·M − 141,107,412,992 B/tp of weights −
    max(profiling forward, sampler run) − 0.35 GiB non-torch. Forward at 8,192 tokens: 8192·2 B·(3·8192 + 3·28672/tp)
    = 1,107,296,256 B at tp 2; sampler: 1024 seqs × 128,256 vocab × 4 B × 2 copies = 1,050,673,152 B (larger at tp
    4 and 8). tp 2: 0.9·85,018,877,624 − 70,553,706,496 − 1,107,296,256 − 375,809,638 = 4,480,177,471 B; blocks of 16
    tokens × 163,840 B per GPU: 1,709 blocks = 27,344 tokens. Max batch at 2,048 tokens = floor(tokens / 2048)."""
    m, g = catalog.models["llama-3.1-70b"], catalog.gpus["h100-sxm"]
    fit = require_fit(m, g, catalog.engine, tp, "bf16")
    assert fit.fits
    assert fit.usable_bytes == pytest.approx(tp * 79.18 * GIB * 0.9, rel=1e-12)
    assert fit.weight_bytes == 141107412992
    assert fit.max_kv_tokens == kv_tokens
    assert fit.kv_capacity_bytes == pytest.approx(kv_tokens * 327680, rel=1e-12)
    assert fit.max_batch(2048) == max_batch
    # what the engine keeps outside weights and KV: activation peak, non-torch memory, and the partial last block
    act = max(8192 * 2 * (3 * 8192 + 3 * 28672 / tp), 1024 * 128256 * 4 * 2)
    assert fit.reserve_bytes == pytest.approx(tp * (act + 0.35 * GIB), rel=1e-3)


def test_reference_profile_keeps_the_bare_utilization_rule(catalog: Catalog) -> None:
    """An engine without a KV-pool rule (the splitwise and pytorch reference profiles): usable = tp·80 GiB·0.9 and
    KV = usable − weights − tp·activation reserve."""
    from dataclasses import replace

    engine = replace(catalog.engine, kv_cache=None, activation_reserve_bytes=0.0)
    fit = memory_fit(catalog.models["llama-3.1-70b"], catalog.gpus["h100-sxm"], engine, 4, "bf16")
    assert fit.usable_bytes == pytest.approx(4 * 80 * GIB * 0.9, rel=1e-12)
    assert fit.kv_capacity_bytes == pytest.approx(168130232320, rel=1e-12)
    assert fit.max_batch(2048) == 250


def test_max_batch_rejects_nonpositive_context(catalog: Catalog) -> None:
    fit = memory_fit(catalog.models["llama-3.1-8b"], catalog.gpus["h100-sxm"], catalog.engine, 1, "bf16")
    with pytest.raises(ValueError):
        fit.max_batch(0)


def test_check_tp(catalog: Catalog) -> None:
    m, g = catalog.models["llama-3.1-70b"], catalog.gpus["h100-sxm"]
    for tp in (1, 2, 4, 8):
        check_tp(m, g, tp)
    for tp in (0, 3, 6, 16):
        with pytest.raises(InputError):
            check_tp(m, g, tp)


def test_fp8_on_a100_is_unsupported(catalog: Catalog) -> None:
    g = catalog.gpus["a100-sxm-80gb"]
    hw = api.hardware(catalog, g, 4)
    m = catalog.models["llama-3.1-70b"]
    with pytest.raises(UnsupportedPrecisionError) as info:
        decode_step(m, hw, tp=4, precision="fp8", batch=1, context_tokens=100)
    assert "a100-sxm-80gb" in info.value.message
    with pytest.raises(UnsupportedPrecisionError):
        api.estimate("prefill", model="llama-3.1-70b", gpu="a100-sxm-80gb", tp=4, precision="fp8", tokens=100, catalog=catalog)


def test_moe_decode_reads_fewer_bytes_at_batch_one(catalog: Catalog) -> None:
    mix = catalog.models["mixtral-8x7b"]
    # one token routes to 2 of 8 experts: E*(1-(1-k/E)^1) = k, so exactly the active parameters are read
    assert expert_weight_bytes_touched(mix, "bf16", 1) == pytest.approx(2 * mix.num_active_params, rel=1e-9)
    # at large batches every expert is touched: (3/4)^512 is ~1e-64
    assert expert_weight_bytes_touched(mix, "bf16", 512) == pytest.approx(2 * mix.num_params, rel=1e-9)
    hw = api.hardware(catalog, catalog.gpus["h100-sxm"], 2)
    s1 = decode_step(mix, hw, tp=2, precision="bf16", batch=1, context_tokens=1000)
    s256 = decode_step(mix, hw, tp=2, precision="bf16", batch=256, context_tokens=1000)
    kv = kv_bytes_per_token(mix, "bf16")
    assert s1.bytes_moved - kv * 1000 < 0.3 * weight_bytes(mix, "bf16")
    assert s256.bytes_moved - kv * 256 * 1000 == pytest.approx(weight_bytes(mix, "bf16"), rel=1e-6)
    # a dense model always reads every weight
    dense = catalog.models["llama-3.1-8b"]
    assert expert_weight_bytes_touched(dense, "bf16", 1) == weight_bytes(dense, "bf16")


def test_intra_node_link(catalog: Catalog) -> None:
    h100 = catalog.gpus["h100-sxm"]
    assert intra_node_bandwidth_bytes_per_s(h100, catalog, 8) == pytest.approx(450e9)
    pcie = catalog.gpus["a100-pcie-80gb"]
    assert intra_node_bandwidth_bytes_per_s(pcie, catalog, 2) == pytest.approx(300e9)  # bridged pair
    assert intra_node_bandwidth_bytes_per_s(pcie, catalog, 4) == catalog.links["pcie4-x16"].bandwidth_bytes_per_s


def test_kv_transfer_hand_computed(catalog: Catalog) -> None:
    m = catalog.models["llama-3.1-70b"]
    link = catalog.links["ib-ndr-400"]  # 50e9 B/s line rate, 0.9 achieved, latency null
    # 1000 tokens * 327,680 B / (2 GPUs * 0.9 * 50e9) = 3.6409 ms; nothing overlapped
    total = 1000 * 327680 / (2 * 0.9 * 50e9)
    assert kv_transfer_s(m, link, catalog.engine, precision="bf16", prompt_tokens=1000, tp=2) == pytest.approx(total, rel=1e-12)
    # a long prefill hides all but one layer's share (80 layers)
    hidden = kv_transfer_s(m, link, catalog.engine, precision="bf16", prompt_tokens=1000, tp=2, prefill_s=1.0)
    assert hidden == pytest.approx(total / 80, rel=1e-12)


# --------------------------------------------------------------------------- properties

MODELS = st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen2.5-32b"])
GPUS = st.sampled_from(["h100-sxm", "a100-sxm-80gb", "l40s", "h200-sxm"])
TPS = st.sampled_from([1, 2, 4, 8])


def _hw(catalog: Catalog, gpu: str, tp: int) -> Hardware:
    return api.hardware(catalog, catalog.gpus[gpu], tp)


@HYP
@given(model=MODELS, gpu=GPUS, tp=TPS, batch=st.integers(1, 64), t1=st.integers(1, 32768), t2=st.integers(1, 32768))
def test_prefill_latency_non_decreasing_in_tokens(
    catalog: Catalog, model: str, gpu: str, tp: int, batch: int, t1: int, t2: int
) -> None:
    lo, hi = sorted((t1, t2))
    m, hw = catalog.models[model], _hw(catalog, gpu, tp)
    a = prefill_step(m, hw, tp=tp, precision="bf16", prompt_tokens=lo, batch=batch)
    b = prefill_step(m, hw, tp=tp, precision="bf16", prompt_tokens=hi, batch=batch)
    assert a.latency_s <= b.latency_s


@HYP
@given(model=MODELS, gpu=GPUS, tp=TPS, tokens=st.integers(1, 16384), b1=st.integers(1, 128), b2=st.integers(1, 128))
def test_prefill_latency_non_decreasing_in_batch(
    catalog: Catalog, model: str, gpu: str, tp: int, tokens: int, b1: int, b2: int
) -> None:
    lo, hi = sorted((b1, b2))
    m, hw = catalog.models[model], _hw(catalog, gpu, tp)
    a = prefill_step(m, hw, tp=tp, precision="bf16", prompt_tokens=tokens, batch=lo)
    b = prefill_step(m, hw, tp=tp, precision="bf16", prompt_tokens=tokens, batch=hi)
    assert a.latency_s <= b.latency_s


@HYP
@given(model=MODELS, gpu=GPUS, tp=TPS, ctx=st.integers(1, 131072), b1=st.integers(1, 1024), b2=st.integers(1, 1024))
def test_decode_latency_non_decreasing_in_batch(
    catalog: Catalog, model: str, gpu: str, tp: int, ctx: int, b1: int, b2: int
) -> None:
    lo, hi = sorted((b1, b2))
    m, hw = catalog.models[model], _hw(catalog, gpu, tp)
    a = decode_step(m, hw, tp=tp, precision="bf16", batch=lo, context_tokens=ctx)
    b = decode_step(m, hw, tp=tp, precision="bf16", batch=hi, context_tokens=ctx)
    assert a.latency_s <= b.latency_s


@HYP
@given(model=MODELS, gpu=GPUS, tp=TPS, batch=st.integers(1, 512), c1=st.floats(1, 131072), c2=st.floats(1, 131072))
def test_decode_latency_non_decreasing_in_context(
    catalog: Catalog, model: str, gpu: str, tp: int, batch: int, c1: float, c2: float
) -> None:
    lo, hi = sorted((c1, c2))
    m, hw = catalog.models[model], _hw(catalog, gpu, tp)
    a = decode_step(m, hw, tp=tp, precision="bf16", batch=batch, context_tokens=lo)
    b = decode_step(m, hw, tp=tp, precision="bf16", batch=batch, context_tokens=hi)
    assert a.latency_s <= b.latency_s


@HYP
@given(model=MODELS, gpu=GPUS, tp1=TPS, tp2=TPS, tokens=st.integers(1, 16384), batch=st.integers(1, 256), phase=st.booleans())
def test_more_tp_never_increases_compute(
    catalog: Catalog, model: str, gpu: str, tp1: int, tp2: int, tokens: int, batch: int, phase: bool
) -> None:
    lo, hi = sorted((tp1, tp2))
    m = catalog.models[model]

    def compute(tp: int) -> float:
        hw = _hw(catalog, gpu, tp)
        if phase:
            return prefill_step(m, hw, tp=tp, precision="bf16", prompt_tokens=tokens, batch=batch).compute_s
        return decode_step(m, hw, tp=tp, precision="bf16", batch=batch, context_tokens=tokens).compute_s

    # per GPU a GEMM shrinks with TP and may reach a smaller share of peak (the fitted shape term):
    # never faster than the ideal 1/tp split, never slower than not splitting
    assert compute(lo) * lo / hi * (1 - 1e-9) <= compute(hi) <= compute(lo) * (1 + 1e-9)


@HYP
@given(model=MODELS, gpu=GPUS, tp=TPS, tokens=st.integers(1, 32768), batch=st.integers(1, 256), phase=st.booleans())
def test_mfu_mbu_in_unit_interval(catalog: Catalog, model: str, gpu: str, tp: int, tokens: int, batch: int, phase: bool) -> None:
    m, hw = catalog.models[model], _hw(catalog, gpu, tp)
    if phase:
        s = prefill_step(m, hw, tp=tp, precision="bf16", prompt_tokens=tokens, batch=batch)
    else:
        s = decode_step(m, hw, tp=tp, precision="bf16", batch=batch, context_tokens=tokens)
    assert 0 < s.mfu_frac <= 1
    assert 0 < s.mbu_frac <= 1
    assert s.latency_s >= max(s.compute_s, s.memory_s) > 0
    q = hw.efficiency.for_precision("bf16").overlap_q
    assert s.latency_s == pytest.approx(overlap_s(s.compute_s, s.memory_s, q) + s.comm_s + s.overhead_s, rel=1e-12)
    assert s.latency_s <= s.compute_s + s.memory_s + s.comm_s + s.overhead_s + 1e-15
    assert s.bound in ("compute", "memory", "overhead")


def test_estimate_facade(catalog: Catalog) -> None:
    r = api.estimate("decode", model="llama_3_1_70b", gpu="H100_SXM", tp=4, batch=64, context=2048, catalog=catalog)
    assert r.model.id == "llama-3.1-70b"
    assert r.gpu.id == "h100-sxm"
    assert r.fits  # 64 <= 237
    assert r.max_batch == 237  # test_70b_memory_fit_and_max_batch works it out
    over = api.estimate("decode", model="llama-3.1-70b", gpu="h100-sxm", tp=4, batch=251, context=2048, catalog=catalog)
    assert not over.fits
    hw = api.hardware(catalog, catalog.gpus["h100-sxm"], 4)
    direct = decode_step(catalog.models["llama-3.1-70b"], hw, tp=4, precision="bf16", batch=64, context_tokens=2048)
    assert r.step == direct


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"phase": "decode", "batch": 0, "context": 10}, "--batch"),
        ({"phase": "prefill", "tokens": -5}, "--tokens"),
        ({"phase": "prefill", "tokens": None}, "--tokens is required"),
        ({"phase": "decode", "context": None}, "--context is required"),
        ({"phase": "decode", "context": 200000}, "context window"),
    ],
)
def test_estimate_input_errors(catalog: Catalog, kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"model": "llama-3.1-70b", "gpu": "h100-sxm", "tp": 8, "catalog": catalog}
    args.update(kwargs)
    phase = args.pop("phase")
    with pytest.raises(InputError) as info:
        api.estimate(phase, **args)  # type: ignore[arg-type]
    assert needle in info.value.message


# --------------------------------------------------------------------------- queueing


def test_erlang_c_known_values() -> None:
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    for rho in (0.1, 0.5, 0.9):
        assert queueing.erlang_c(1, rho) == pytest.approx(rho, rel=1e-12)
    # c=3, a=2: B = (8/6)/(1+2+2+8/6) = 4/19; C = B/(1 - 2/3*(1-B)) = 4/9
    assert queueing.erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-12)
    assert queueing.erlang_c(4, 0.0) == 0.0
    assert queueing.erlang_c(2, 2.0) == 1.0
    assert queueing.erlang_c(2, 5.0) == 1.0
    with pytest.raises(InputError):
        queueing.erlang_c(0, 1.0)


def test_mm1_mean_wait() -> None:
    lam, mu = 0.8, 1.0
    # Allen-Cunneen with c_a^2 = c_s^2 = 1 is exact M/M/1: rho / (mu - lambda) = 0.8 / 0.2 = 4
    assert queueing.mean_wait_s(lam, 1 / mu, 1.0, 1.0) == pytest.approx(4.0, rel=1e-12)
    # M/D/1 (c_s^2 = 0) halves it (Pollaczek-Khinchine)
    assert queueing.mean_wait_s(lam, 1 / mu, 0.0, 1.0) == pytest.approx(2.0, rel=1e-12)
    # M/M/2 at a = 1: C = 1/3, wait = C / (2 mu - lambda) = 1/3
    assert queueing.mean_wait_s(1.0, 1.0, 1.0, 1.0, servers=2) == pytest.approx(1 / 3, rel=1e-12)


def test_saturated_wait_is_infinite() -> None:
    for lam in (1.0, 1.5, 100.0):
        assert queueing.mean_wait_s(lam, 1.0, 1.0, 1.0) == math.inf
        assert queueing.wait_quantile_s(lam, 1.0, 1.0, 1.0, 0.99) == math.inf
    assert queueing.mean_wait_s(4.0, 1.0, 1.0, 1.0, servers=4) == math.inf
    assert queueing.mean_wait_s(0.0, 1.0, 1.0, 1.0) == 0.0
    assert queueing.wait_quantile_s(0.0, 1.0, 1.0, 1.0, 0.99) == 0.0


def test_mm1_wait_quantile_is_exact() -> None:
    # M/M/1: P(W > x) = rho * exp(-(mu - lambda) x), so q_p = ln(rho / (1 - p)) / (mu - lambda)
    assert queueing.wait_quantile_s(0.8, 1.0, 1.0, 1.0, 0.99) == pytest.approx(math.log(80) / 0.2, rel=1e-12)
    # below the waiting probability the quantile is 0: rho = 0.005 < 1 - 0.99
    assert queueing.wait_quantile_s(0.005, 1.0, 1.0, 1.0, 0.99) == 0.0


@HYP
@given(
    r1=st.floats(0.0, 20.0),
    r2=st.floats(0.0, 20.0),
    service=st.floats(0.01, 2.0),
    cs2=st.floats(0.0, 4.0),
    ca2=st.floats(0.1, 4.0),
    servers=st.integers(1, 16),
    p=st.sampled_from([0.5, 0.9, 0.99, 0.999]),
)
def test_wait_quantile_non_decreasing_in_rate(
    r1: float, r2: float, service: float, cs2: float, ca2: float, servers: int, p: float
) -> None:
    lo, hi = sorted((r1, r2))
    a = queueing.wait_quantile_s(lo, service, cs2, ca2, p, servers)
    b = queueing.wait_quantile_s(hi, service, cs2, ca2, p, servers)
    assert a >= 0 and b >= 0
    assert a <= b * (1 + 1e-9) or b == math.inf
    m = queueing.mean_wait_s(hi, service, cs2, ca2, servers)
    assert m >= 0


@HYP
@given(
    service=st.floats(0.01, 2.0),
    cs2=st.floats(0.0, 4.0),
    ca2=st.floats(0.1, 4.0),
    servers=st.integers(1, 16),
    p=st.sampled_from([0.9, 0.99]),
    budget_services=st.floats(0.05, 20.0),
)
def test_max_rate_for_wait_inverts_quantile(
    service: float, cs2: float, ca2: float, servers: int, p: float, budget_services: float
) -> None:
    assume(cs2 + ca2 > 0.05)
    budget = budget_services * service
    rate = queueing.max_rate_for_wait(service, cs2, ca2, p, budget, servers)
    assert 0 < rate < servers / service
    assert queueing.wait_quantile_s(rate, service, cs2, ca2, p, servers) <= budget
    # a little more load breaks the budget
    assert queueing.wait_quantile_s(rate * (1 + 1e-6) + 1e-12, service, cs2, ca2, p, servers) > budget * (1 - 1e-6)


def test_max_rate_for_wait_mm1_closed_form() -> None:
    # M/M/1, mu = 1, p = 0.99, budget 10 s: solve ln(lam / 0.01) / (1 - lam) = 10 by bisection here too
    rate = queueing.max_rate_for_wait(1.0, 1.0, 1.0, 0.99, 10.0)
    assert math.log(rate / 0.01) / (1 - rate) == pytest.approx(10.0, rel=1e-6)
    assert queueing.max_rate_for_wait(1.0, 1.0, 1.0, 0.99, -1.0) == 0.0


def test_occupancy_helpers() -> None:
    z99 = NormalDist().inv_cdf(0.99)
    assert queueing.occupancy_quantile(100.0, 0.99) == pytest.approx(100 + z99 * 10, rel=1e-9)
    assert queueing.occupancy_quantile(100.0, 0.5) == pytest.approx(100.0)
    assert queueing.occupancy_quantile(0.0, 0.99) == 0.0
    # max_mean_occupancy inverts occupancy_quantile
    for cap in (1, 16, 250, 711):
        n = queueing.max_mean_occupancy(cap, 0.99)
        assert 0 < n < cap
        assert queueing.occupancy_quantile(n, 0.99) == pytest.approx(cap, rel=1e-9)


@pytest.mark.parametrize("p", [0.001, 0.01, 0.2, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999])
def test_normal_quantile(p: float) -> None:
    assert queueing.normal_quantile(p) == pytest.approx(NormalDist().inv_cdf(p), abs=1e-8)


def test_normal_quantile_domain() -> None:
    for p in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            queueing.normal_quantile(p)


# --------------------------------------------------------------------------- cost and power


def test_power_is_idle_plus_dynamic_times_busy() -> None:
    """TOY_GPU: idle 100 W, decode busy 400 W, TDP 700 W (prefill busy)."""
    assert power.idle_power_w(TOY_GPU) == 100
    assert power.dynamic_power_w(TOY_GPU, "decode") == 300
    assert power.dynamic_power_w(TOY_GPU, "prefill") == 600
    assert power.gpu_power_w(TOY_GPU, "decode", 0.5) == 250
    assert power.gpu_power_w(TOY_GPU, "prefill", 2.0) == 700  # utilization clamped to 1
    for phase in ("prefill", "decode", "colocated"):
        for u in (0.0, 0.3, 1.0):
            expected = power.idle_power_w(TOY_GPU) + power.dynamic_power_w(TOY_GPU, phase) * u
            assert power.gpu_power_w(TOY_GPU, phase, u) == expected
    unknown = replace(TOY_GPU, idle_w=None, decode_busy_w=None)
    assert power.idle_power_w(unknown) == 700
    assert power.dynamic_power_w(unknown, "decode") == 0.0  # the TDP both ways: an upper bound
    low_busy = replace(TOY_GPU, decode_busy_w=50)
    assert power.dynamic_power_w(low_busy, "decode") == 0.0  # never negative


PRICINGS = {
    "on-demand": Pricing(),
    "reserved": Pricing(mode="reserved", discount_frac=0.35),
    "capex": Pricing(mode="capex", amortization_years=4),
    "capex-own-power": Pricing(mode="capex", amortization_years=3, usd_per_kwh=0.12, pue=1.3),
}


def test_gpu_hour_fixed_part_by_mode(catalog: Catalog) -> None:
    """h100-sxm: 6.155 USD/h list price; an 8-GPU server at 317,000 USD; 0.0835 USD/kWh and PUE 1.58."""
    on_demand = cost.gpu_fixed_usd_per_hour(catalog, "h100-sxm", PRICINGS["on-demand"])
    assert on_demand == pytest.approx(6.155)
    assert cost.gpu_fixed_usd_per_hour(catalog, "h100-sxm", PRICINGS["reserved"]) == pytest.approx(0.65 * 6.155)
    assert cost.gpu_fixed_usd_per_hour(catalog, "h100-sxm", PRICINGS["capex"]) == pytest.approx(317_000 / 8 / (4 * 8760))
    assert cost.gpu_fixed_usd_per_hour(catalog, "h100-sxm", PRICINGS["capex-own-power"]) == pytest.approx(
        317_000 / 8 / (3 * 8760)
    )
    assert cost.energy_usd_per_wh(catalog, PRICINGS["on-demand"]) == 0.0
    assert cost.energy_usd_per_wh(catalog, PRICINGS["reserved"]) == 0.0
    assert cost.energy_usd_per_wh(catalog, PRICINGS["capex"]) == pytest.approx(0.0835 * 1.58 / 1000)
    assert cost.energy_usd_per_wh(catalog, PRICINGS["capex-own-power"]) == pytest.approx(0.12 * 1.3 / 1000)


@pytest.mark.parametrize("mode", sorted(PRICINGS))
@pytest.mark.parametrize("watts", [0.0, 123.4, 700.0])
def test_gpu_hour_is_fixed_part_plus_energy(catalog: Catalog, mode: str, watts: float) -> None:
    """The reports' GPU-hour is the optimizer's two coefficients: fixed + watts x USD per Wh."""
    pricing = PRICINGS[mode]
    fixed = cost.gpu_fixed_usd_per_hour(catalog, "h100-sxm", pricing)
    total = cost.gpu_usd_per_hour(catalog, "h100-sxm", pricing, watts)
    assert total == fixed + cost.energy_usd_per_hour(catalog, pricing, watts)
    assert total == pytest.approx(fixed + watts * cost.energy_usd_per_wh(catalog, pricing), rel=1e-12)
    if not mode.startswith("capex"):
        assert total == fixed  # cloud prices include power


def test_gpu_hour_input_errors(catalog: Catalog) -> None:
    with pytest.raises(InputError, match="no server capex"):
        cost.gpu_fixed_usd_per_hour(catalog, "a100-sxm-80gb", PRICINGS["capex"])
    with pytest.raises(InputError, match="amortization_years"):
        cost.gpu_fixed_usd_per_hour(catalog, "h100-sxm", Pricing(mode="capex"))
    no_power = replace(catalog, electricity_usd_per_kwh=None)
    with pytest.raises(InputError, match="usd_per_kwh and pue"):
        cost.energy_usd_per_wh(no_power, PRICINGS["capex"])
    assert cost.energy_usd_per_wh(no_power, PRICINGS["capex-own-power"]) > 0  # the pricing's own figures


# --------------------------------------------------------------------------- fitted kernel shapes


def test_overlap_limits() -> None:
    assert overlap_s(3.0, 4.0, None) == 4.0  # the roofline's max
    assert overlap_s(3.0, 4.0, 1.0) == pytest.approx(7.0)  # no overlap at all
    assert overlap_s(3.0, 4.0, 2.0) == pytest.approx(5.0)
    assert overlap_s(3.0, 4.0, 64.0) == pytest.approx(4.0, rel=1e-3)
    assert overlap_s(0.0, 0.0, 2.0) == 0.0


def test_gemm_shape_share() -> None:
    assert gemm_dim_share(4096, 0.0, 1.5) == 1.0  # no shape term
    assert gemm_dim_share(2048, 2048, 1.3) == pytest.approx(0.5)
    assert gemm_dim_share(8192, 1386, 1.32) > gemm_dim_share(2048, 1386, 1.32)
    # below the narrowest fitted width the share stays at that width's, never extrapolated
    assert gemm_dim_share(256, 1386, 1.32) == gemm_dim_share(GEMM_SHAPE_MIN_DIM, 1386, 1.32)


def test_gemm_shapes_cover_the_active_weights(catalog: Catalog) -> None:
    for model_id in ("llama-3.1-8b", "llama-3.1-70b", "qwen3-32b"):
        m = catalog.models[model_id]
        weights = sum(w for w, _ in gemm_shapes(m, 1))
        embedding = m.vocab_size * m.hidden_size  # a lookup, not a GEMM (these models do not tie it to the LM head)
        assert weights + embedding == pytest.approx(m.num_active_params, rel=0.01), model_id  # norms aside
    m = catalog.models["llama-3.1-70b"]
    dims = [s for _, s in gemm_shapes(m, 8)]
    assert dims == [(64 + 16) * 128 / 8, 8192 / 8, 2 * 28672 / 8, 28672 / 8, 8192]  # qkv, o, gate/up, down, LM head


def test_gemm_compute_frac_is_flop_weighted(catalog: Catalog) -> None:
    base = catalog.efficiency["h100-sxm"]
    flat = replace(base, gemm_half_dim=0.0)
    m = catalog.models["llama-3.1-70b"]
    assert gemm_compute_frac(m, 4, flat) == flat.compute_frac
    shaped = replace(base, compute_frac=0.7, gemm_half_dim=1400.0, gemm_dim_exp=1.3)
    shapes = gemm_shapes(m, 4)
    total = sum(w for w, _ in shapes)
    expect = 0.7 * total / sum(w / gemm_dim_share(s, 1400.0, 1.3) for w, s in shapes)
    assert gemm_compute_frac(m, 4, shaped) == pytest.approx(expect, rel=1e-12)
    assert gemm_compute_frac(m, 8, shaped) < gemm_compute_frac(m, 1, shaped) < 0.7


def test_allreduce_curve_interpolates_measurements(catalog: Catalog) -> None:
    points = ((1e4, 5e-6), (1e6, 2e-5), (1e8, 1e-3))
    assert curve_latency_s(points, 1e3) == 5e-6  # below: the smallest message's latency
    assert curve_latency_s(points, 1e6) == pytest.approx(2e-5)
    assert curve_latency_s(points, 1e5) == pytest.approx(1e-5)  # log-log midpoint
    slope = (1e-3 - 2e-5) / (1e8 - 1e6)
    assert curve_latency_s(points, 2e8) == pytest.approx(1e-3 + 1e8 * slope)  # above: last segment's bandwidth
    gpu = catalog.gpus["h100-sxm"]
    eff = replace(catalog.efficiency["h100-sxm"], allreduce_curve=((8, points),), fp8=None)
    hw = Hardware(gpu, eff, intra_node_bandwidth_bytes_per_s(gpu, catalog, 8))
    assert allreduce_s(1e5, 8, hw) == pytest.approx(1e-5)
    formula = replace(eff, allreduce_curve=())
    hw4 = Hardware(gpu, eff, intra_node_bandwidth_bytes_per_s(gpu, catalog, 4))
    assert allreduce_s(1e5, 4, hw4) == allreduce_s(1e5, 4, Hardware(gpu, formula, hw4.intra_node_bytes_per_s))  # no TP 4 curve


def test_chunk_sizes() -> None:
    assert chunk_sizes(8192, 8189) == [(8189, 1), (3, 1)]  # not two full chunks
    assert chunk_sizes(8000, 8192) == [(8000, 1)]
    assert chunk_sizes(20000, 8192) == [(8192, 2), (3616, 1)]
    assert chunk_sizes(16384, 8192) == [(8192, 2)]
