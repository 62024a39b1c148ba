"""Issue 14 end to end: a Mooncake-format trace with known prefix reuse, profiled into a workload that
planner size reads, whose prefill capacity rises by the factor that reuse implies."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import Run

from planner import api
from planner.domain import Pool
from planner.perf.evaluate import make_replica, rate_bound
from planner.perf.serving import cached_tokens

PROMPT, BLOCK, N = 2048, 512, 400


def _trace(path: Path) -> Path:
    """400 prompts of 2,048 tokens (4 blocks of 512), 20 req/s: every prompt starts with the same two blocks (a
    shared 1,024-token system prompt) and ends with two of its own. The first request misses everything; each
    later one hits the shared 1,024 tokens: hit share (N - 1)·1024 / (N·2048) = 0.49875."""
    rows = []
    for i in range(N):
        rows.append(
            {"timestamp": 50 * i, "input_length": PROMPT, "output_length": 64, "hash_ids": [0, 1, 10 + 2 * i, 11 + 2 * i]}
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import cli

    tmp = tmp_path_factory.mktemp("realism")
    out = tmp / "w.yaml"
    code, _, err = cli(
        "profile", str(_trace(tmp / "t.jsonl")), "--model", "llama-3.1-8b",
        "--ttft-p99-ms", "2000", "--tpot-p99-ms", "100", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    return out


def test_profile_writes_the_known_hit_share(profiled: Path) -> None:
    (cls,) = api.load_workload_spec(profiled).classes
    assert cls.prefix_cache is not None
    assert cls.prefix_cache.hit_frac == pytest.approx((N - 1) * 1024 / (N * PROMPT), abs=1e-6)
    assert cls.prefix_cache.working_set_tokens == 2 * BLOCK  # the two shared blocks


def test_size_prefill_capacity_rises_by_the_reuse_factor(profiled: Path, run_cli: Run) -> None:
    code, out, err = run_cli("size", str(profiled), "-f", "json")
    assert code == 0, err
    pc = json.loads(out)["data"]["prefix_cache"]
    # Cheaper with reuse (here 2 A100-40GB prefill replicas instead of 1 faster, dearer GPU without it).
    assert pc["with_reuse"]["usd_per_hour"] < pc["without_reuse"]["usd_per_hour"]
    catalog = api.load_catalog(())
    spec = api.load_workload_spec(profiled)
    workload = api.resolve_workload(spec, catalog)
    (cls,) = workload.classes
    without = replace(cls, prefix_cache=None)
    rep = make_replica(catalog, workload, "h100-sxm", 1)
    assert rep is not None
    pool = Pool(role="prefill", gpu="h100-sxm", tp=1, replicas=1, max_batch=1)
    factor = rate_bound(rep, pool, cls, None) / rate_bound(rep, pool, without, None)
    # Every prompt is 2,048 tokens, so a replica's prefill rate is 1/T(L) without reuse and 1/T(L, c) with it,
    # c = h·L of the prompt cached: the capacity rises by T(L)/T(L, c).
    c = cached_tokens(cls, PROMPT)
    assert c == pytest.approx(spec.classes[0].prefix_cache.hit_frac * PROMPT)  # type: ignore[union-attr]
    assert factor == pytest.approx(rep.prefill_s(PROMPT) / rep.prefill_s(PROMPT, c), rel=1e-9)
    # Hand bounds: reuse saves work (> 1), and at most the share of tokens it skips: the cached tokens still cost
    # attention work (L² − c² of L², a smaller saving than (L − c) of L) and every step its fixed overhead, so the
    # gain is below L/(L − c).
    assert 1.0 < factor < PROMPT / (PROMPT - c)
