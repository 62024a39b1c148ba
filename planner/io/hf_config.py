"""A Hugging Face ``config.json`` to a model catalog entry (``planner catalog import-model``).

The architectures the performance core represents: dense decoders (Llama, Mistral, Qwen2/2.5, Qwen3), sparse
mixtures of experts (Mixtral, Qwen3-MoE, gpt-oss), and DeepSeek-V3-style MoE with multi-head latent attention
(DeepSeek-V3/R1, Kimi-K2). Parameter counts are computed from the config (every weight matrix, bias, norm and
embedding; the multi-token-prediction layers DeepSeek ships beside the model are not part of serving and are left
out), so an entry never needs a figure the config does not give. An architecture the core cannot represent
(linear or state-space attention layers, vision towers, per-layer head counts) is one error naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from planner.errors import InputError

DENSE = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"}
MOE = {"MixtralForCausalLM", "Qwen3MoeForCausalLM", "GptOssForCausalLM"}
MLA_MOE = {"DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM", "KimiK2ForCausalLM"}
SUPPORTED = DENSE | MOE | MLA_MOE

# Fields whose presence means layers the core does not model (state-space, linear attention, vision).
UNSUPPORTED_FIELDS = {
    "hybrid_override_pattern": "hybrid Mamba/attention layers",
    "vision_config": "a vision tower (multimodal model)",
    "linear_attention": "linear-attention layers",
    "mamba_d_state": "state-space (Mamba) layers",
    "num_key_value_heads_per_layer": "per-layer KV head counts",
}


@dataclass(frozen=True, slots=True)
class ImportedModel:
    id: str
    entry: dict[str, Any]  # a models.yaml entry (without source, which the caller names)
    notes: list[str]


def parse_config(text: str, origin: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{origin}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{origin}: JSON nested too deeply to be a config.json") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InputError(f"{origin}: not a config.json ({str(exc).split(';')[0]})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{origin}: a Hugging Face config.json is a JSON object")
    return doc


def _int(doc: dict[str, Any], key: str, origin: str, default: int | None = None) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        if value is None:
            raise InputError(f"{origin}: {key}: missing (a whole number is needed)")
        raise InputError(f"{origin}: {key}: {value!r} is not a whole number >= 0")
    return value


def import_model(doc: dict[str, Any], origin: str, model_id: str | None = None, hf_id: str | None = None) -> ImportedModel:
    """The catalog entry of the decoder ``doc`` describes (``origin`` names the file in errors)."""
    archs = doc.get("architectures")
    if not isinstance(archs, list) or not archs or not all(isinstance(a, str) for a in archs):
        raise InputError(f'{origin}: architectures: missing (a list such as ["LlamaForCausalLM"])')
    arch = archs[0]
    for key, what in UNSUPPORTED_FIELDS.items():
        if key in doc:
            raise InputError(f"{origin}: {key}: {what} is not something the core represents")
    layer_types = doc.get("layer_types")
    if isinstance(layer_types, list):
        odd = sorted({t for t in layer_types if t not in ("full_attention", "sliding_attention")}, key=str)
        if odd:
            raise InputError(f"{origin}: layer_types: {', '.join(map(str, odd))} layers are not something the core represents")
    if arch not in SUPPORTED:
        raise InputError(
            f"{origin}: architectures: {arch} is not a decoder the core represents",
            hint=f"supported: {', '.join(sorted(SUPPORTED))}",
        )
    d = _int(doc, "hidden_size", origin)
    n_layers = _int(doc, "num_hidden_layers", origin)
    heads = _int(doc, "num_attention_heads", origin)
    kv_heads = _int(doc, "num_key_value_heads", origin, heads)
    vocab = _int(doc, "vocab_size", origin)
    inter = _int(doc, "intermediate_size", origin)
    ctx = _int(doc, "max_position_embeddings", origin)
    if min(d, n_layers, heads, kv_heads, vocab, inter, ctx) < 1:
        raise InputError(f"{origin}: hidden_size, num_hidden_layers, heads, vocab, intermediate_size and context must be >= 1")
    head_dim = doc.get("head_dim") or d // heads
    if not isinstance(head_dim, int) or isinstance(head_dim, bool) or head_dim < 1:
        raise InputError(f"{origin}: head_dim: {head_dim!r} is not a whole number >= 1")
    tied = bool(doc.get("tie_word_embeddings", False))
    notes: list[str] = []
    entry: dict[str, Any] = {}
    embed = vocab * d * (1 if tied else 2)
    norms = 2 * d  # input and post-attention RMSNorm
    shared_e = dense_layers = 0
    moe_inter: int | None = None
    n_experts: int | None = None
    k: int | None = None

    if arch in MLA_MOE:
        r = _int(doc, "kv_lora_rank", origin)
        rope = _int(doc, "qk_rope_head_dim", origin)
        nope = _int(doc, "qk_nope_head_dim", origin)
        v = _int(doc, "v_head_dim", origin)
        q_rank = doc.get("q_lora_rank")
        if q_rank is not None:
            q_rank = _int(doc, "q_lora_rank", origin)
            q_proj = d * q_rank + q_rank + q_rank * heads * (nope + rope)
        else:
            q_proj = d * heads * (nope + rope)
        attn = q_proj + d * (r + rope) + r + r * heads * (nope + v) + heads * v * d
        n_experts = _int(doc, "n_routed_experts", origin)
        k = _int(doc, "num_experts_per_tok", origin)
        shared_e = _int(doc, "n_shared_experts", origin, 0)
        moe_inter = _int(doc, "moe_intermediate_size", origin)
        dense_layers = _int(doc, "first_k_dense_replace", origin, 0)
        if _int(doc, "moe_layer_freq", origin, 1) != 1:
            raise InputError(f"{origin}: moe_layer_freq: MoE layers other than every layer are not something the core represents")
        router = d * n_experts + (n_experts if doc.get("topk_method") == "noaux_tc" else 0)  # + e_score_correction_bias
        entry.update(kv_lora_rank=r, qk_rope_head_dim=rope, qk_nope_head_dim=nope, v_head_dim=v)
        if q_rank is not None:
            entry["q_lora_rank"] = q_rank
        head_dim = nope + rope
        mtp = doc.get("num_nextn_predict_layers")
        if mtp:
            notes.append(f"num_nextn_predict_layers {mtp}: the multi-token-prediction layers are not counted (not served)")
    else:
        bias = arch == "Qwen2ForCausalLM" or bool(doc.get("attention_bias", False))
        attn = d * heads * head_dim + 2 * d * kv_heads * head_dim + heads * head_dim * d
        if bias:
            attn += heads * head_dim + 2 * kv_heads * head_dim
            if arch == "GptOssForCausalLM":
                attn += d  # the output projection's bias
        if arch.startswith("Qwen3"):
            attn += 2 * head_dim  # q_norm, k_norm
        if arch == "GptOssForCausalLM":
            attn += heads  # attention sinks, one logit per head
        if arch in MOE:
            n_experts = _int(doc, "num_local_experts" if "num_local_experts" in doc else "num_experts", origin)
            k = _int(doc, "num_experts_per_tok" if "num_experts_per_tok" in doc else "experts_per_token", origin)
            moe_inter = _int(doc, "moe_intermediate_size", origin) if arch == "Qwen3MoeForCausalLM" else inter
            router = d * n_experts + (n_experts if arch == "GptOssForCausalLM" else 0)
            if arch == "Qwen3MoeForCausalLM":
                if doc.get("mlp_only_layers"):
                    raise InputError(f"{origin}: mlp_only_layers: dense layers among MoE ones are not represented")
                if _int(doc, "decoder_sparse_step", origin, 1) != 1:
                    raise InputError(f"{origin}: decoder_sparse_step: MoE on every n-th layer is not represented")
        else:
            router = 0
    ffn_dense = 3 * d * inter
    if n_experts is not None and k is not None and moe_inter is not None:
        expert = 3 * d * moe_inter + (2 * moe_inter + d if arch == "GptOssForCausalLM" else 0)  # gpt-oss: biased experts
        n_moe = n_layers - dense_layers
        common = embed + d + n_layers * (attn + norms) + dense_layers * ffn_dense + n_moe * router
        total = common + n_moe * (n_experts + shared_e) * expert
        active = common + n_moe * (k + shared_e) * expert
        entry.update(num_experts=n_experts, experts_per_token=k)
        if moe_inter != inter:
            entry["moe_intermediate_size"] = moe_inter
        if shared_e:
            entry["num_shared_experts"] = shared_e
        if dense_layers:
            entry["num_dense_layers"] = dense_layers
    else:
        total = active = embed + d + n_layers * (attn + norms + ffn_dense)
    window = doc.get("sliding_window")
    if arch == "GptOssForCausalLM" or (isinstance(layer_types, list) and "sliding_attention" in layer_types):
        sliding = sum(1 for t in layer_types or [] if t == "sliding_attention")
        if not isinstance(window, int) or window < 1 or sliding == 0:
            raise InputError(f"{origin}: sliding_window: layers of sliding attention need a window of whole tokens >= 1")
        entry.update(sliding_window_tokens=window, num_sliding_layers=sliding)
    elif window and doc.get("use_sliding_window"):
        raise InputError(f"{origin}: use_sliding_window: sliding attention on every layer is not something the core represents")
    name_id = model_id or _default_id(hf_id, doc)
    out: dict[str, Any] = {
        "name": hf_id.split("/")[-1] if hf_id else name_id,
        **({"hf_id": hf_id} if hf_id else {}),
        "num_params": total,
        "num_active_params": active,
        "num_layers": n_layers,
        "hidden_size": d,
        "intermediate_size": inter,
        "num_attention_heads": heads,
        "num_kv_heads": heads if arch in MLA_MOE else kv_heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "max_context_tokens": ctx,
        "num_experts": n_experts,
        "experts_per_token": k,
        **entry,
    }
    if arch in MLA_MOE:
        notes.append("multi-head latent attention: num_kv_heads is the head count, head_dim the query/key width (nope + rope)")
    notes.append(f"{arch}: parameter counts computed from config.json ({total:,} total, {active:,} active)")
    return ImportedModel(id=name_id, entry=out, notes=notes)


def _default_id(hf_id: str | None, doc: dict[str, Any]) -> str:
    if hf_id:
        return hf_id.split("/")[-1].lower()
    name = doc.get("_name_or_path")
    if isinstance(name, str) and name.strip():
        return name.strip().split("/")[-1].lower()
    return str(doc.get("model_type", "model")).lower()
