"""Qwen3 in the model catalog, Hugging Face ids on every model, and attention FLOPs at the query width."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conftest import Run, assert_input_error

from planner import api
from planner.domain import Catalog, ModelSpec
from planner.errors import CatalogError, InputError, UnknownIdError
from planner.io.catalog import IdIndex, load_catalog
from planner.io.workload import parse_workload, to_domain
from planner.perf.memory import kv_bytes_per_token
from planner.perf.roofline import decode_step, prefill_step

# config.json of Qwen/Qwen3-32B and Qwen/Qwen3-8B (as copied in aiconfigurator-core 0.12.0's model_configs)
QWEN3_CONFIGS = {
    "qwen3-32b": {
        "hidden_size": 5120,
        "intermediate_size": 25600,
        "num_hidden_layers": 64,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
    },
    "qwen3-8b": {
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
    },
}


def dense_param_count(m: ModelSpec, *, qk_norm: bool) -> int:
    """Untied embeddings and LM head + per layer (q, k, v, o, gated MLP, 2 norms, Qwen3's q_norm and
    k_norm) + final norm, with q and o at the query width heads·head_dim."""
    h, q, kv = m.hidden_size, m.num_attention_heads * m.head_dim, m.num_kv_heads * m.head_dim
    per_layer = 2 * h * q + 2 * h * kv + 3 * h * m.intermediate_size + 2 * h + (2 * m.head_dim if qk_norm else 0)
    return 2 * m.vocab_size * h + m.num_layers * per_layer + h


# --------------------------------------------------------------------------- Qwen3 figures


@pytest.mark.parametrize("model_id", sorted(QWEN3_CONFIGS))
def test_qwen3_figures_are_the_config(catalog: Catalog, model_id: str) -> None:
    cfg, m = QWEN3_CONFIGS[model_id], catalog.models[model_id]
    assert (m.hidden_size, m.intermediate_size, m.num_layers) == (
        cfg["hidden_size"],
        cfg["intermediate_size"],
        cfg["num_hidden_layers"],
    )
    assert (m.num_attention_heads, m.num_kv_heads, m.head_dim) == (
        cfg["num_attention_heads"],
        cfg["num_key_value_heads"],
        cfg["head_dim"],
    )
    assert m.vocab_size == cfg["vocab_size"]
    assert m.max_context_tokens == cfg["max_position_embeddings"] == 40960
    assert not m.is_moe
    assert m.num_active_params == m.num_params  # dense


def test_qwen3_param_counts_equal_the_count_from_the_config(catalog: Catalog) -> None:
    assert catalog.models["qwen3-32b"].num_params == dense_param_count(catalog.models["qwen3-32b"], qk_norm=True)
    assert catalog.models["qwen3-8b"].num_params == dense_param_count(catalog.models["qwen3-8b"], qk_norm=True)
    assert catalog.models["qwen3-32b"].num_params == 32_762_123_264
    assert catalog.models["qwen3-8b"].num_params == 8_190_735_360
    # the same formula (no q_norm/k_norm) gives the HF totals of the Llama 3.1 models
    for llama in ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"):
        assert catalog.models[llama].num_params == dense_param_count(catalog.models[llama], qk_norm=False), llama


def test_qwen3_32b_query_width_is_not_hidden(catalog: Catalog) -> None:
    m = catalog.models["qwen3-32b"]
    assert m.query_width == 64 * 128 == 8192
    assert m.hidden_size == 5120
    # the other dense models of the first catalog have heads·head_dim == hidden, so their results did not change;
    # the MoE/MLA models added since (DeepSeek-V3, Qwen3-MoE, gpt-oss) are wider or MLA, like Qwen3-32B
    for other in ("llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "mixtral-8x7b", "qwen2.5-32b", "qwen3-8b"):
        assert catalog.models[other].query_width == catalog.models[other].hidden_size, other
    assert catalog.models["gpt-oss-120b"].query_width == 64 * 64 != catalog.models["gpt-oss-120b"].hidden_size


def test_qwen3_32b_kv_bytes_per_token(catalog: Catalog) -> None:
    m = catalog.models["qwen3-32b"]
    assert kv_bytes_per_token(m, "bf16") == 2 * 64 * 8 * 128 * 2 == 262_144
    assert kv_bytes_per_token(m, "fp8") == 131_072


def test_qwen3_sources_name_the_hf_configs(catalog: Catalog) -> None:
    for model_id, src in (("qwen3-32b", "hf-qwen3-32b-config"), ("qwen3-8b", "hf-qwen3-8b-config")):
        m = catalog.models[model_id]
        assert m.sources["num_params"] == src
        assert m.sources["head_dim"] == src
        assert catalog.sources[src].url == f"https://huggingface.co/{m.hf_id}/blob/main/config.json"
        assert "aiconfigurator-core 0.12.0" in (catalog.sources[src].note or "")


# --------------------------------------------------------------------------- attention FLOPs


def test_attention_flops_use_heads_times_head_dim(catalog: Catalog) -> None:
    m = catalog.models["qwen3-32b"]
    hw = api.hardware(catalog, catalog.gpus["h100-sxm"], 2)
    pre = prefill_step(m, hw, tp=2, precision="bf16", prompt_tokens=4096)
    assert pre.flops == pytest.approx(2 * m.num_active_params * 4096 + 2 * 64 * 8192 * 4096**2, rel=1e-12)
    dec = decode_step(m, hw, tp=2, precision="bf16", batch=8, context_tokens=2048)
    assert dec.flops == pytest.approx(2 * m.num_active_params * 8 + 4 * 64 * 8192 * 8 * 2048, rel=1e-12)
    # the hidden size alone does not move the attention term (only the all-reduce size)
    wider = replace(m, hidden_size=8192)
    assert prefill_step(wider, hw, tp=2, precision="bf16", prompt_tokens=4096).flops == pre.flops
    assert prefill_step(wider, hw, tp=2, precision="bf16", prompt_tokens=4096).comm_s > pre.comm_s
    # the query width does
    narrower = replace(m, head_dim=80)  # 64·80 = 5120
    assert prefill_step(narrower, hw, tp=2, precision="bf16", prompt_tokens=4096).flops == pytest.approx(
        2 * m.num_active_params * 4096 + 2 * 64 * 5120 * 4096**2, rel=1e-12
    )


def test_estimate_qwen3_32b_on_h100(catalog: Catalog) -> None:
    r = api.estimate("prefill", model="qwen3-32b", gpu="h100-sxm", tp=2, tokens=8192, catalog=catalog)
    assert r.model.id == "qwen3-32b"
    assert r.fits
    assert r.memory.kv_bytes_per_token == 262_144
    assert r.step.latency_s > 0 and 0 < r.step.mfu_frac < 1
    d = api.estimate("decode", model="Qwen/Qwen3-32B", gpu="h100-sxm", tp=2, batch=16, context=8192, catalog=catalog)
    assert d.model.id == "qwen3-32b" and d.fits
    with pytest.raises(InputError, match="40960"):
        api.estimate("prefill", model="qwen3-32b", gpu="h100-sxm", tp=2, tokens=40961, catalog=catalog)


# --------------------------------------------------------------------------- Hugging Face ids


def test_every_builtin_model_has_a_unique_hf_id(catalog: Catalog) -> None:
    seen: dict[str, str] = {}
    for m in catalog.models.values():
        assert m.hf_id, f"built-in model {m.id} has no hf_id"
        for name in (m.hf_id, *m.hf_aliases):
            assert name.lower() not in seen, (name, seen.get(name.lower()), m.id)
            seen[name.lower()] = m.id
    IdIndex.models(catalog.models)  # builds without a conflict


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("meta-llama/Llama-3.1-70B", "llama-3.1-70b"),
        ("META-LLAMA/llama-3.1-70b", "llama-3.1-70b"),
        ("meta-llama/Llama-3.1-8B", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
        ("nvidia/llama-3.1-8b-instruct-fp8", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-70b"),
        ("meta-llama/Llama-3.1-405B", "llama-3.1-405b"),
        ("meta-llama/Llama-2-70b-hf", "llama-2-70b"),
        ("mistralai/Mixtral-8x7B-v0.1", "mixtral-8x7b"),
        ("Qwen/Qwen2.5-32B", "qwen2.5-32b"),
        ("Qwen/Qwen3-32B", "qwen3-32b"),
        ("qwen/qwen3-32b-fp8", "qwen3-32b"),
        ("Qwen/Qwen3-8B", "qwen3-8b"),
        ("qwen3_32b", "qwen3-32b"),  # catalog ids still resolve
    ],
)
def test_hf_id_resolution(catalog: Catalog, raw: str, expected: str) -> None:
    assert api.resolve_model(catalog, raw).id == expected
    assert IdIndex.models(catalog.models).resolve(raw) == expected


def test_unknown_hf_id_lists_close_matches(catalog: Catalog) -> None:
    with pytest.raises(UnknownIdError) as info:
        api.resolve_model(catalog, "meta-llama/Llama-3.1-7B")
    assert info.value.message == "--model: unknown model id 'meta-llama/Llama-3.1-7B'"
    assert info.value.hint is not None
    assert "meta-llama/Llama-3.1-70B (llama-3.1-70b)" in info.value.hint
    with pytest.raises(UnknownIdError) as info:
        api.resolve_model(catalog, "zzzz/zzzzzzzzzzzzzz")
    assert info.value.hint is not None and "qwen3-32b" in info.value.hint


def test_workload_model_accepts_a_hf_id(catalog: Catalog) -> None:
    text = textwrap.dedent(
        """\
        model: Qwen/Qwen3-32B-FP8
        precision: fp8
        classes:
          - name: chat
            rate_rps: 5
            input_tokens: {mean: 2000, p50: 1500, p90: 4000, p99: 7000}
            output_tokens: {mean: 300, p50: 250, p90: 600, p99: 1000}
            slo: {ttft_p99_ms: 1000, tpot_p99_ms: 60}
        """
    )
    wl = to_domain(parse_workload(yaml.safe_load(text), "w.yaml", text), catalog, "w.yaml")
    assert wl.model == "qwen3-32b"
    with pytest.raises(UnknownIdError) as info:
        bad = text.replace("Qwen/Qwen3-32B-FP8", "Qwen/Qwen3-33B")
        to_domain(parse_workload(yaml.safe_load(bad), "w.yaml", bad), catalog, "w.yaml")
    assert info.value.message.startswith("w.yaml: model: unknown model id")
    assert info.value.hint is not None and "Qwen/Qwen3-32B (qwen3-32b)" in info.value.hint


# --------------------------------------------------------------------------- user catalogs


def model_yaml(model_id: str, hf: str | None, aliases: tuple[str, ...] = ()) -> str:
    lines = [
        f"  {model_id}:",
        '    name: "Test model"',
        "    source: hf-llama-3-1-8b-config",
        *([f'    hf_id: "{hf}"'] if hf is not None else []),
        *(["    hf_aliases:", *(f'      - "{a}"' for a in aliases)] if aliases else []),
        "    num_params: 8030261248",
        "    num_active_params: 8030261248",
        "    num_layers: 32",
        "    hidden_size: 4096",
        "    intermediate_size: 14336",
        "    num_attention_heads: 32",
        "    num_kv_heads: 8",
        "    head_dim: 128",
        "    vocab_size: 128256",
        "    max_context_tokens: 131072",
    ]
    return "\n".join(lines) + "\n"


def write_models(directory: Path, *entries: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "models.yaml").write_text("schema_version: 1\nmodels:\n" + "".join(entries))
    return directory


def test_user_model_without_hf_id(tmp_path: Path) -> None:
    cat = load_catalog([write_models(tmp_path / "c", model_yaml("my-model", None))])
    assert cat.models["my-model"].hf_id is None
    assert cat.models["my-model"].hf_aliases == ()
    assert "hf_id" not in cat.models["my-model"].sources
    assert api.resolve_model(cat, "my_model").id == "my-model"


def test_user_model_with_its_own_hf_id(tmp_path: Path) -> None:
    d = write_models(tmp_path / "c", model_yaml("my-model", "me/My-Model", ("me/My-Model-FP8",)))
    cat = load_catalog([d])
    assert api.resolve_model(cat, "ME/my-model-fp8").id == "my-model"
    assert cat.models["my-model"].hf_aliases == ("me/My-Model-FP8",)


def test_overriding_a_builtin_model_keeps_its_hf_id_without_a_conflict(tmp_path: Path) -> None:
    d = write_models(tmp_path / "c", model_yaml("llama-3.1-8b", "meta-llama/Llama-3.1-8B"))
    cat = load_catalog([d])
    assert api.resolve_model(cat, "meta-llama/Llama-3.1-8B").id == "llama-3.1-8b"
    assert cat.models["llama-3.1-8b"].hf_aliases == ()  # the override replaced the whole entry


@pytest.mark.parametrize("claimed", ["meta-llama/Llama-3.1-8B", "META-LLAMA/LLAMA-3.1-8B-INSTRUCT"])
def test_two_models_claiming_one_hf_id_is_a_catalog_error(tmp_path: Path, claimed: str) -> None:
    d = write_models(tmp_path / "c", model_yaml("my-llama", claimed))
    with pytest.raises(CatalogError) as info:
        load_catalog([d])
    msg = info.value.message
    assert "llama-3.1-8b" in msg and "my-llama" in msg, msg
    assert str(d / "models.yaml") in msg
    assert "Hugging Face id" in msg


def test_a_model_id_cannot_look_like_a_hugging_face_id(tmp_path: Path) -> None:
    """A catalog id follows the id pattern (no '/'), so no model's id can be another model's Hugging Face id."""
    d = write_models(tmp_path / "c", model_yaml("me/x", None), model_yaml("my-model", "me/X"))
    with pytest.raises(CatalogError) as info:
        load_catalog([d])
    assert "models.me/x" in info.value.message and "should match pattern" in info.value.message


@pytest.mark.parametrize(
    ("hf", "aliases", "needle"),
    [
        ("not a repo id", (), "hf_id"),
        (None, ("me/alias",), "hf_aliases needs an hf_id"),
        ("me/model", ("me/other", "ME/MODEL"), "repeat a Hugging Face id"),
        ("me/model", ("no-owner",), "hf_aliases"),
    ],
)
def test_malformed_hf_ids_are_rejected(tmp_path: Path, hf: str | None, aliases: tuple[str, ...], needle: str) -> None:
    d = write_models(tmp_path / "c", model_yaml("my-model", hf, aliases))
    with pytest.raises(CatalogError) as info:
        load_catalog([d])
    assert needle in info.value.message, info.value.message
    assert str(d / "models.yaml") in info.value.message


# --------------------------------------------------------------------------- CLI


def test_catalog_list_and_show_give_the_hf_id(run_cli: Run) -> None:
    code, out, _ = run_cli("catalog", "list", "models", "--format", "json")
    assert code == 0
    rows = {r["id"]: r for r in json.loads(out)["data"]["models"]}
    assert rows["qwen3-32b"]["hf_id"] == "Qwen/Qwen3-32B"
    assert rows["llama-3.1-70b"]["hf_id"] == "meta-llama/Llama-3.1-70B"
    code, out, _ = run_cli("catalog", "list", "models")
    assert code == 0 and "Qwen/Qwen3-8B" in out
    code, out, _ = run_cli("catalog", "show", "Qwen/Qwen3-32B-FP8", "--format", "json")
    assert code == 0
    data = json.loads(out)["data"]
    assert data["kind"] == "models"
    assert data["entry"]["id"] == "qwen3-32b"
    assert data["entry"]["hf_id"] == "Qwen/Qwen3-32B"
    assert data["entry"]["hf_aliases"] == ["Qwen/Qwen3-32B-FP8"]
    assert data["sources"]["hf_id"]["url"] == "https://huggingface.co/Qwen/Qwen3-32B/blob/main/config.json"
    code, out, _ = run_cli("catalog", "show", "qwen3-32b")
    assert code == 0 and "Qwen/Qwen3-32B-FP8" in out and "hf_id" in out


def test_estimate_cli_takes_a_hf_id(run_cli: Run) -> None:
    code, out, _ = run_cli(
        "estimate",
        "prefill",
        "--model",
        "meta-llama/Llama-3.1-70B",
        "--gpu",
        "h100-sxm",
        "--tp",
        "8",
        "--tokens",
        "8192",
        "-f",
        "json",
    )
    assert code == 0
    ref_code, ref, _ = run_cli(
        "estimate", "prefill", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--tp", "8", "--tokens", "8192", "-f", "json"
    )
    assert ref_code == 0
    assert json.loads(out)["data"] == json.loads(ref)["data"]
    result = run_cli(
        "estimate", "prefill", "--model", "meta-llama/Llama-3.1-7B", "--gpu", "h100-sxm", "--tp", "8", "--tokens", "1"
    )
    assert_input_error(result, "meta-llama/Llama-3.1-70B")
