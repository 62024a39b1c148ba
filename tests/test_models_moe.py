"""Models of today (issue 13): MLA, MoE detail, sliding windows, KV replication and the config.json importer,
with hand-worked counts on small configurations."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import assert_input_error, cli
from test_perf import TOY_HW, TOY_MODEL

from planner.domain import ModelSpec
from planner.errors import InputError
from planner.io.catalog import load_catalog
from planner.io.hf_config import import_model, parse_config
from planner.perf.memory import kv_bytes_per_token, kv_replication, memory_fit
from planner.perf.roofline import decode_step, prefill_step, step

CONFIGS = Path(__file__).parent / "data" / "hf_configs"

# A toy MLA model: 10 layers, 10 heads, latent rank 50 + rope 10, nope 40, value 40 per head.
TOY_MLA = replace(
    TOY_MODEL,
    id="toy-mla",
    num_kv_heads=10,
    head_dim=50,
    kv_lora_rank=50,
    qk_rope_head_dim=10,
    qk_nope_head_dim=40,
    v_head_dim=40,
    q_lora_rank=None,
)
TOY_SWA = replace(TOY_MODEL, id="toy-swa", sliding_window_tokens=100, num_sliding_layers=4)


def test_mla_kv_bytes_per_token_hand_worked() -> None:
    # 10 layers x (50 + 10) latent values x 2 bytes: no K/V pair, no per-head copies
    assert kv_bytes_per_token(TOY_MLA, "bf16") == 1200
    # GQA toy: 2 x 10 layers x 2 KV heads x 100 x 2 bytes
    assert kv_bytes_per_token(TOY_MODEL, "bf16") == 8000
    catalog = load_catalog(())
    ds = catalog.models["deepseek-v3"]
    assert kv_bytes_per_token(ds, "fp8") == 61 * (512 + 64)  # 35,136 B, vs Llama-3.1-70B's 327,680 in bf16
    assert kv_bytes_per_token(catalog.models["llama-3.1-70b"], "bf16") == 327_680


def test_kv_replication() -> None:
    catalog = load_catalog(())
    assert kv_replication(TOY_MLA, 8) == 8  # every rank keeps the latent whole
    assert kv_replication(TOY_MODEL, 1) == 1 and kv_replication(TOY_MODEL, 2) == 1
    assert kv_replication(TOY_MODEL, 4) == 2  # 2 KV heads over 4 GPUs
    assert kv_replication(catalog.models["qwen3-235b-a22b"], 8) == 2  # 4 KV heads
    assert kv_replication(catalog.models["llama-3.1-70b"], 8) == 1
    fit = memory_fit(catalog.models["deepseek-v3"], catalog.gpus["h200-sxm"], catalog.engine, 8, "fp8")
    assert fit.kv_bytes_per_token == 8 * 35_136


def test_mla_decode_flops_and_bytes_hand_worked() -> None:
    s = decode_step(TOY_MLA, TOY_HW, tp=2, precision="bf16", batch=4, context_tokens=1000)
    # attention, absorbed: 2 x 10 heads x (2 x 50 + 10) = 2,200 FLOPs per layer and context token,
    # x 10 layers x 4,000 context tokens = 8.8e7; GEMMs 2 x 1e10 x 4 tokens = 8e10
    assert s.flops == pytest.approx(8e10 + 8.8e7, rel=1e-12)
    # bytes: weights 2e10 + latent 60 values x 2 B x 10 layers x 4,000 tokens, read by both ranks (x 2)
    assert s.bytes_moved == pytest.approx(2e10 + 60 * 2 * 10 * 4000 * 2, rel=1e-12)


def test_mla_prefill_attention_at_the_mean_query_value_width() -> None:
    s = prefill_step(TOY_MLA, TOY_HW, tp=1, precision="bf16", prompt_tokens=100, batch=1)
    # QK^T at nope + rope = 50 and PV at 40 per head: query_width = 10 x (50 + 40) / 2 = 450;
    # causal attention 2 x 10 layers x 450 x 100^2 = 9e7
    assert TOY_MLA.query_width == 450
    assert s.flops == pytest.approx(2e10 * 100 + 9e7, rel=1e-12)


def test_sliding_window_layers_attend_over_the_window() -> None:
    full = decode_step(TOY_MODEL, TOY_HW, tp=1, precision="bf16", batch=2, context_tokens=1000)
    swa = decode_step(TOY_SWA, TOY_HW, tp=1, precision="bf16", batch=2, context_tokens=1000)
    # 6 full layers over 2,000 context tokens, 4 windowed over min(2,000, 2 x 100) = 200; query width 1000
    attention = 4.0 * 1000 * (6 * 2000 + 4 * 200)
    assert swa.flops == pytest.approx(2e10 * 2 + attention, rel=1e-12)
    kv_layer = 2 * 2 * 100 * 2  # K and V, 2 KV heads, head_dim 100, bf16
    assert swa.bytes_moved == pytest.approx(2e10 + kv_layer * (6 * 2000 + 4 * 200), rel=1e-12)
    assert swa.latency_s < full.latency_s
    # below the window nothing changes
    short_full = step(TOY_MODEL, TOY_HW, tp=1, precision="bf16", decode_batch=2, decode_context_tokens=100.0)
    short_swa = step(TOY_SWA, TOY_HW, tp=1, precision="bf16", decode_batch=2, decode_context_tokens=100.0)
    assert short_swa.flops == pytest.approx(short_full.flops, rel=1e-12)


def test_moe_touches_only_routed_experts() -> None:
    catalog = load_catalog(())
    ds = catalog.models["deepseek-v3"]
    one = step(ds, TOY_HW, tp=8, precision="fp8", decode_batch=1, decode_context_tokens=1.0)
    many = step(ds, TOY_HW, tp=8, precision="fp8", decode_batch=256, decode_context_tokens=256.0)
    # one token reads its 8 experts (and the shared part): about the active parameters
    assert one.bytes_moved == pytest.approx(ds.num_active_params, rel=0.01)
    # 256 tokens under uniform routing touch 256 x (1 - (1 - 8/256)^256) = 255.9 of 256 experts: about all
    assert many.bytes_moved == pytest.approx(ds.num_params, rel=0.01)


# ------------------------------------------------------------------------------- config.json importer

SUPPORTED = {
    "deepseek-ai--DeepSeek-V3_config.json": "deepseek-v3",
    "deepseek-ai--DeepSeek-R1_config.json": "deepseek-v3",
    "moonshotai--Kimi-K2-Instruct_config.json": "kimi-k2",
    "Qwen--Qwen3-235B-A22B_config.json": "qwen3-235b-a22b",
    "Qwen--Qwen3-30B-A3B_config.json": "qwen3-30b-a3b",
    "openai--gpt-oss-120b_config.json": "gpt-oss-120b",
    "meta-llama--Meta-Llama-3.1-70B_config.json": "llama-3.1-70b",
    "mistralai--Mixtral-8x7B-v0.1_config.json": "mixtral-8x7b",
    "Qwen--Qwen3-32B_config.json": "qwen3-32b",
}
FIELDS = [f for f in ModelSpec.__dataclass_fields__ if f not in ("id", "name", "hf_id", "hf_aliases", "sources")]


@pytest.mark.parametrize("config", sorted(SUPPORTED))
def test_import_reproduces_the_catalog_entry(config: str) -> None:
    path = CONFIGS / config
    imported = import_model(parse_config(path.read_text(encoding="utf-8"), str(path)), config)
    entry = load_catalog(()).models[SUPPORTED[config]]
    got = {f: imported.entry.get(f, ModelSpec.__dataclass_fields__[f].default) for f in FIELDS}
    want = {f: getattr(entry, f) for f in FIELDS}
    assert got == want


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("nvidia--Nemotron-H-56B-Base-8K_config.json", "hybrid_override_pattern"),
        ("Qwen--Qwen3-VL-8B-Instruct_config.json", "vision_config"),
        ("MiniMaxAI--MiniMax-M2.5_config.json", "architectures"),
    ],
)
def test_import_refuses_what_the_core_cannot_represent(config: str, field: str) -> None:
    path = CONFIGS / config
    with pytest.raises(InputError) as err:
        import_model(parse_config(path.read_text(encoding="utf-8"), config), config)
    assert err.value.message.startswith(f"{config}: {field}:")


def test_import_names_a_missing_field() -> None:
    doc = json.loads((CONFIGS / "Qwen--Qwen3-32B_config.json").read_text(encoding="utf-8"))
    del doc["num_hidden_layers"]
    with pytest.raises(InputError, match=r"^c.json: num_hidden_layers: missing"):
        import_model(doc, "c.json")


def test_import_model_cli_writes_an_overlay_the_planner_uses(tmp_path: Path) -> None:
    out = tmp_path / "overlay"
    config = str(CONFIGS / "openai--gpt-oss-120b_config.json")
    code, stdout, err = cli(
        "catalog", "import-model", config, "--id", "my-oss", "-o", str(out), "--as-of", "2026-12-02", "-f", "json"
    )
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["data"]["model"]["num_params"] == 116_829_156_672
    assert doc["data"]["model"]["num_sliding_layers"] == 18
    catalog = load_catalog([out])
    assert catalog.models["my-oss"].num_params == catalog.models["gpt-oss-120b"].num_params
    # a second import merges into the same overlay
    code, _, err = cli("catalog", "import-model", str(CONFIGS / "Qwen--Qwen3-32B_config.json"), "--id", "q32", "-o", str(out))
    assert code == 0, err
    assert {"my-oss", "q32"} <= set(load_catalog([out]).models)
    code, stdout, err = cli("estimate", "decode", "-m", "q32", "-g", "h100-sxm", "--tp", "1", "--batch", "4", "--context", "100",
                            "--catalog-dir", str(out), "-f", "json")  # fmt: skip
    assert code == 0, err


def test_import_model_cli_refuses_an_architecture_it_cannot_represent(tmp_path: Path) -> None:
    config = str(CONFIGS / "nvidia--Nemotron-H-56B-Base-8K_config.json")
    assert_input_error(cli("catalog", "import-model", config, "-o", str(tmp_path / "o")), "hybrid_override_pattern")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------ expert and attention-data parallelism

TOY_MOE = replace(TOY_MODEL, id="toy-moe", num_params=4e10, num_active_params=1e10, num_experts=8, experts_per_token=2)


def test_moe_split_hand_worked() -> None:
    from planner.perf.roofline import moe_split

    shared, per_expert = moe_split(TOY_MOE)
    # per expert (4e10 - 1e10) / (8 - 2) = 5e9; shared 4e10 - 8 x 5e9 = 0
    assert per_expert == 5e9 and shared == 0.0
    assert moe_split(TOY_MODEL) == (1e10, 0.0)


def test_all_to_all_bytes_per_token_hand_worked() -> None:
    from planner.perf.roofline import Hardware, all_to_all_s

    hw = Hardware(TOY_HW.gpu, TOY_HW.efficiency, 1e11, moe_ep=4)
    # 100 tokens on 4 GPUs: 25 per GPU x 2 experts x 1,000 wide x (2 B dispatch + 2 B combine) x 3/4 remote
    # = 150,000 B per GPU; / (0.5 x 1e11 B/s) = 3e-6 s, + 1e-5 s x log2(4)
    assert all_to_all_s(100, TOY_MOE, 4, hw, "bf16") == pytest.approx(3e-6 + 2e-5, rel=1e-12)
    # fp8 runs dispatch in fp8: 25 x 2 x 1,000 x 3 B x 3/4 = 112,500 B
    assert all_to_all_s(100, TOY_MOE, 4, hw, "fp8") == pytest.approx(112_500 / 5e10 + 2e-5, rel=1e-12)


def test_expert_parallel_step_replaces_the_ffn_all_reduce() -> None:
    from planner.perf.roofline import Hardware, all_to_all_s, allreduce_s

    tp_hw = Hardware(TOY_HW.gpu, TOY_HW.efficiency, 1e11)
    ep_hw = Hardware(TOY_HW.gpu, TOY_HW.efficiency, 1e11, moe_ep=4)
    tp = step(TOY_MOE, tp_hw, tp=4, precision="bf16", decode_batch=64, decode_context_tokens=64e3)
    ep = step(TOY_MOE, ep_hw, tp=4, precision="bf16", decode_batch=64, decode_context_tokens=64e3)
    ar = allreduce_s(64 * 1000 * 2.0, 4, tp_hw)
    assert tp.comm_s == pytest.approx(2 * 10 * ar, rel=1e-12)  # two all-reduces per layer
    # attention's all-reduce stays; the FFN's becomes the all-to-all
    assert ep.comm_s == pytest.approx(10 * ar + 10 * all_to_all_s(64, TOY_MOE, 4, ep_hw, "bf16"), rel=1e-12)
    assert ep.flops == tp.flops and ep.bytes_moved == tp.bytes_moved  # the same work, split differently


def test_attention_data_parallel_copies_the_shared_weights_and_not_the_kv() -> None:
    catalog = load_catalog(())
    ds, gpu, engine = catalog.models["deepseek-v3"], catalog.gpus["h200-sxm"], catalog.engine
    from planner.perf.roofline import moe_split

    tp8 = memory_fit(ds, gpu, engine, 8, "fp8")
    dp8 = memory_fit(ds, gpu, engine, 8, "fp8", attention_dp=8)
    assert dp8.weight_bytes - tp8.weight_bytes == pytest.approx(7 * moe_split(ds)[0], rel=1e-12)  # fp8: 1 B/param
    assert tp8.kv_bytes_per_token == 8 * 35_136  # every TP rank holds the latent
    assert dp8.kv_bytes_per_token == 35_136  # each attention group of one GPU holds its own requests' latent


def test_serve_layout_flags_are_checked(tmp_path: Path) -> None:
    base = ["estimate", "serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--tp", "2", "--isl", "100", "--osl", "10", "-c", "1"]
    assert_input_error(cli(*base, "--moe-ep", "2"), "--moe-ep 2: llama-3.1-8b is not a mixture-of-experts model")
    assert_input_error(cli(*base, "--attention-dp", "3"), "--attention-dp 3: must divide the replica's 2 GPUs")
    code, out, err = cli(*base, "--attention-dp", "2", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["inputs"]["attention_dp"] == 2


# ------------------------------------------------------------------------------------------ GPUs of today


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_new_gpus_have_fitted_or_flagged_factors(engine: str) -> None:
    from planner.io.catalog import select_engine

    catalog = select_engine(load_catalog(()), engine)
    for gpu in ("b300", "gb200"):  # aiconfigurator-core has kernel tables of both
        eff = catalog.efficiency[gpu]
        assert eff.transferred_from is None and "op tables" in eff.fitted_on, (gpu, eff.fitted_on)
        assert eff.fp4 is not None or engine == "vllm"  # nvfp4 GEMM tables where the engine has them
    assert catalog.efficiency["l4"].transferred_from == "l40s"  # no L4 tables: borrowed, flagged


def test_gb200_tensor_parallelism_spans_trays_of_its_nvlink_domain() -> None:
    from planner.perf.memory import check_tp, max_tp

    catalog = load_catalog(())
    gb200, b200 = catalog.gpus["gb200"], catalog.gpus["b200"]
    assert gb200.gpus_per_node == 4 and gb200.nvlink_domain_gpus == 72
    assert max_tp(gb200) == 72 and max_tp(b200) == 8
    check_tp(catalog.models["llama-3.1-70b"], gb200, 8)  # two trays, one NVLink domain
    code, out, err = cli("estimate", "decode", "-m", "deepseek-v3", "-g", "gb200", "--tp", "8", "--precision", "fp4",
                         "--batch", "64", "--context", "4000", "-f", "json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["data"]["latency_ms"] > 0


# ------------------------------------------------------------------------- expert-parallel plans (size, check)

MOE_WORKLOAD = """\
model: deepseek-v3
precision: fp8
classes:
  - name: chat
    rate_rps: 30
    interarrival_cv2: 1.0
    input_tokens: {mean: 2000, p50: 1500, p90: 4000, p99: 7000}
    output_tokens: {mean: 300, p50: 250, p90: 600, p99: 1000}
    slo: {ttft_p99_ms: 1000, tpot_p99_ms: 60}
hardware:
  prefill_gpus: [h200-sxm]
  decode_gpus: [h200-sxm]
  links: [ib-ndr-400]
pricing: {mode: on-demand}
objective: cost
"""


def _candidates(workload_path: Path) -> list[str]:
    from planner.io.workload import read_workload_spec, to_domain
    from planner.optimize.candidates import enumerate_candidates

    catalog = load_catalog(())
    wl = to_domain(read_workload_spec(workload_path), catalog, str(workload_path))
    gpus = {"prefill": wl.prefill_gpus, "decode": wl.decode_gpus}
    return [c.key for c in enumerate_candidates(catalog, wl, ("prefill", "decode"), gpus)]


def test_moe_sizing_considers_expert_parallel_layouts_and_the_plan_round_trips(tmp_path: Path) -> None:
    from planner.domain import Pool

    workload = tmp_path / "workload.yaml"
    workload.write_text(MOE_WORKLOAD, encoding="utf-8")
    keys = _candidates(workload)
    plain = [k for k in keys if "__ep" not in k and "__dpa" not in k]
    # beside each plain-TP candidate (deepseek-v3 fp8 fits on 8 H200s only), EP 8 with TP and with DP attention
    assert any("__tp8__ep8__b" in k for k in keys) and any("__tp8__ep8__dpa8__b" in k for k in keys)
    assert keys[: len(plain)] == plain  # the new layouts come after the plain-TP candidates
    assert Pool(role="decode", gpu="g", tp=8, replicas=1, max_batch=8, attention_dp=8, moe_ep=8).layout == "EP 8, DP-attn 8"

    plan = tmp_path / "plan.json"
    code, _, err = cli("size", str(workload), "-f", "json", "-o", str(plan))
    assert code == 0, err
    pools = json.loads(plan.read_text(encoding="utf-8"))["data"]["pools"]
    assert any(p.get("moe_ep") == 8 for p in pools)  # the layout pays here (measured: 24 GPUs vs 40 with plain TP)
    for p in pools:  # the keys appear only for a layout that is not plain TP
        assert all(p[k] > 1 for k in ("attention_dp", "moe_ep") if k in p)
        assert "moe_ep" in p or "attention_dp" not in p
    code, out, err = cli("check", str(plan), "-f", "json")
    assert code in (0, 1), err
    # the saved plan reproduces the sized cost
    sized = json.loads(plan.read_text(encoding="utf-8"))["data"]["cost"]["usd_per_hour"]
    assert json.loads(out)["data"]["evaluated"]["usd_per_hour"] == pytest.approx(sized, rel=1e-9)
    code, out, err = cli("simulate", str(plan), "-n", "2000", "-f", "json")
    assert code in (0, 1), err
    simulated = {p["key"]: p for p in json.loads(out)["data"]["pools"]}
    assert any(k.startswith("decode__h200-sxm__tp8__ep8") and p["moe_ep"] == 8 for k, p in simulated.items())


def test_dense_candidates_are_unchanged_by_the_moe_layouts() -> None:
    from unittest import mock

    from planner.optimize import candidates

    example = Path(__file__).parent.parent / "examples" / "workloads" / "code_completion.yaml"
    keys = _candidates(example)
    with mock.patch.object(candidates, "_layouts", lambda *a, **k: []):
        assert _candidates(example) == keys  # same candidates, same order
    assert not any("__ep" in k or "__dpa" in k for k in keys)


def test_proposal_layout_fields_are_checked(tmp_path: Path) -> None:
    (tmp_path / "workload.yaml").write_text(MOE_WORKLOAD, encoding="utf-8")
    pools = """\
workload: workload.yaml
pools:
  - {role: prefill, gpu: h200-sxm, tp: 8, replicas: 2, link: ib-ndr-400}
  - {role: decode, gpu: h200-sxm, tp: 8, moe_ep: MOE_EP, attention_dp: 8, replicas: 1, max_batch: 512}
"""
    bad = tmp_path / "bad.yaml"
    bad.write_text(pools.replace("MOE_EP", "3"), encoding="utf-8")
    assert_input_error(cli("check", str(bad)), "pools.1.moe_ep", "does not divide tp 8")
    good = tmp_path / "good.yaml"
    good.write_text(pools.replace("MOE_EP", "8"), encoding="utf-8")
    code, out, err = cli("check", str(good), "-f", "json")
    assert code in (0, 1), err
    subjects = [p["subject"] for p in json.loads(out)["data"]["evaluated"]["pools"]]
    assert "pool:decode__h200-sxm__tp8__ep8__dpa8__b512" in subjects
    dense = tmp_path / "dense.yaml"
    dense.write_text(
        "workload: " + str(Path(__file__).parent.parent / "examples" / "workloads" / "chatbot.yaml") + "\n"
        "pools:\n"
        "  - {role: prefill, gpu: h100-sxm, tp: 8, replicas: 2, link: ib-ndr-400}\n"
        "  - {role: decode, gpu: h100-sxm, tp: 4, moe_ep: 2, replicas: 4}\n",
        encoding="utf-8",
    )
    assert_input_error(cli("check", str(dense)), "pools[1].moe_ep", "llama-3.1-70b is not a mixture-of-experts model")


def test_llama_3_3_70b_is_an_alias_of_the_3_1_architecture() -> None:
    from planner.io.catalog import IdIndex

    catalog = load_catalog(())
    assert IdIndex.models(catalog.models).resolve("meta-llama/Llama-3.3-70B-Instruct", "--model") == "llama-3.1-70b"
