"""KV pool sizes as engines compute them, against published engine logs (tests/data/vllm_kv_logs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.domain import KvCacheRule
from planner.io.catalog import load_catalog
from planner.perf.memory import engine_kv_tokens, max_concurrency, profile_activation_bytes, sglang_mem_fraction_static
from planner.units import GIB

CASES = yaml.safe_load((Path(__file__).parent / "data" / "vllm_kv_logs" / "cases.yaml").read_text())["cases"]


def _predict(case: dict) -> int:
    catalog = load_catalog()
    model = catalog.models[case["model"]]
    base = catalog.engines[case["engine"]].kv_cache  # the rule engines.yaml ships, with the log's own fraction
    assert base is not None
    rule = KvCacheRule(
        rule=base.rule,
        memory_frac=case["memory_frac"],
        block_tokens=base.block_tokens,
        runtime_reserve_bytes=base.runtime_reserve_bytes,
        sampler_logit_copies=base.sampler_logit_copies,
        profile_activation=base.profile_activation,
    )
    _, tokens = engine_kv_tokens(
        model,
        rule,
        case["device_memory_gib"] * GIB,
        case["tp"],
        case["precision"],
        kv_precision=case.get("kv_precision"),
        max_num_batched_tokens=case["max_num_batched_tokens"],
        max_num_seqs=case["max_num_seqs"],
    )
    return tokens


@pytest.mark.parametrize("case", [c for c in CASES if c["tolerance_frac"] is not None], ids=lambda c: c["id"])
def test_kv_tokens_match_logged(case: dict) -> None:
    err = _predict(case) / case["logged_kv_tokens"] - 1
    assert abs(err) <= case["tolerance_frac"], f"{case['id']}: {err:+.1%}"


def test_known_miss_stays_an_over_prediction() -> None:
    """The Qwen3-235B vLLM run (LMCache connector) is reported, not tuned: the rule over-predicts it by 86 %."""
    (case,) = [c for c in CASES if c["tolerance_frac"] is None]
    err = _predict(case) / case["logged_kv_tokens"] - 1
    assert 0.8 < err < 0.9


def test_logged_max_concurrency() -> None:
    for case in CASES:
        if "logged_max_concurrency" in case:
            got = max_concurrency(case["logged_kv_tokens"], case["max_model_len"])
            assert round(got, 2) == case["logged_max_concurrency"]


def test_activation_matches_logged_peaks() -> None:
    """peak_torch_memory − weights in the #10517 logs: 17.06 − 14.99 and 17.98 − 14.99 GiB."""
    model = load_catalog().models["llama-3.1-8b"]
    assert profile_activation_bytes(model, 1, 20000) / GIB == pytest.approx(17.06 - 14.9888, abs=0.03)
    assert profile_activation_bytes(model, 1, 29000) / GIB == pytest.approx(17.98 - 14.9888, abs=0.03)


def test_sglang_default_fraction_by_hand() -> None:
    # H100 (81,559 MiB), TP4: reserved 512 + 12,288 + 1,024 + 512 = 14,336 MB -> (81559 - 14336) / 81559
    assert sglang_mem_fraction_static(81559, 4) == round((81559 - 14336) / 81559, 3)
    # 24 GiB card, TP1: 512 + 3,072 + 48 + 128 = 3,760 MB; no 10 GiB floor below 60 GiB
    assert sglang_mem_fraction_static(24576, 1) == round((24576 - 3760) / 24576, 3)


def test_catalog_rules() -> None:
    engines = load_catalog().engines
    vllm, sglang, trtllm = (engines[e].kv_cache for e in ("vllm", "sglang", "trtllm"))
    assert vllm is not None and (vllm.rule, vllm.block_tokens, vllm.runtime_reserve_bytes) == ("vllm", 16, 0.35 * GIB)
    assert sglang is not None and (sglang.rule, sglang.block_tokens, sglang.memory_frac) == ("sglang", 1, None)
    assert trtllm is not None and (trtllm.rule, trtllm.block_tokens, trtllm.memory_frac) == ("trtllm", 32, 0.9)
    assert engines["pytorch"].kv_cache is None


def test_trtllm_takes_fraction_of_free_memory() -> None:
    model = load_catalog().models["llama-3.1-8b"]
    rule = KvCacheRule(rule="trtllm", memory_frac=0.9, block_tokens=32, profile_activation=False)
    pool, tokens = engine_kv_tokens(model, rule, 80 * GIB, 1, "bf16")
    assert pool == pytest.approx(0.9 * (80 * GIB - 8030261248 * 2))
    assert tokens % 32 == 0 and tokens == int(pool // (32 * 131072)) * 32
