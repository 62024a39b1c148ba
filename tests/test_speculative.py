"""Speculative decoding (issue 14, item 2): the expected tokens per verify step, the published defaults and
their sources, the verify-plus-draft step in the core (TPOT, capacity, KV memory), the simulator's acceptance
draws against the analytic TPOT, and the commands (size, check, estimate serve) with bad inputs refused."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, Run, assert_input_error

from planner import api
from planner.domain import (
    Catalog,
    Pool,
    Speculative,
    Workload,
    acceptance_for_tokens_per_step,
    tokens_per_step,
)
from planner.errors import CatalogError, InputError
from planner.io.catalog import load_catalog
from planner.io.speculative import parse_speculative_flag, resolve_speculative
from planner.io.workload import parse_workload
from planner.perf.evaluate import busy_parts_s, make_replica
from planner.perf.serving import (
    Replica,
    acceptance_spread,
    decode_max_rate,
    decode_tpot,
    draft_cost_frac,
    kv_fits,
    mean_context_tokens,
)
from planner.sim import SimOptions, simulate

EXAMPLE = REPO / "examples" / "workloads" / "assistant_eagle.yaml"
CHAT_IN = {"mean": 2000, "p50": 1500, "p90": 4000, "p99": 7000}
CHAT_OUT = {"mean": 300, "p50": 250, "p90": 600, "p99": 1000}


def _workload(
    catalog: Catalog, speculative: dict[str, object] | None, *, model: str = "llama-3.1-70b", rate: float = 8.0
) -> Workload:
    doc: dict[str, object] = {
        "model": model,
        "precision": "bf16",
        "classes": [
            {
                "name": "chat",
                "rate_rps": rate,
                "input_tokens": CHAT_IN,
                "output_tokens": CHAT_OUT,
                "slo": {"ttft_p99_ms": 2000, "tpot_p99_ms": 60},
            }
        ],
        "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["h100-sxm"], "links": ["ib-ndr-400"]},
    }
    if speculative is not None:
        doc["speculative"] = speculative
    return api.resolve_workload(parse_workload(doc, "test"), catalog, "test")


def _spec(
    catalog: Catalog, method: str, k: int | None = None, a: float | None = None, model: str = "llama-3.1-70b"
) -> Speculative:
    return resolve_speculative(method, k, a, catalog, model, lambda f: f"test: speculative.{f}")  # type: ignore[arg-type]


def _replicas(catalog: Catalog, spec: Speculative, gpu: str = "h100-sxm", tp: int = 4) -> tuple[Replica, Replica]:
    """The plain replica and the same replica (same memory fit) decoding with ``spec``."""
    plain = make_replica(catalog, _workload(catalog, None), gpu, tp)
    assert plain is not None
    return plain, replace(plain, speculative=spec, memo={})


# ------------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize(
    ("k", "a", "expected"),
    [(1, 0.85, 1.85), (3, 0.7, (1 - 0.7**4) / 0.3), (3, 0.0, 1.0), (4, 0.5, 1.9375), (2, 1.0, 3.0)],
)
def test_tokens_per_step_closed_form(k: int, a: float, expected: float) -> None:
    assert tokens_per_step(a, k) == pytest.approx(expected, rel=1e-12)
    worked = (1 - 0.7**4) / 0.3  # the worked example: K=3, A=0.7
    assert worked == pytest.approx(2.533, abs=5e-4)


@pytest.mark.parametrize(("k", "a"), [(1, 0.85), (3, 0.656), (3, 0.7), (7, 0.63)])
def test_moments_match_the_exact_distribution(k: int, a: float) -> None:
    """X = 1 + accepted drafts: P(X = m) = A^(m−1)(1 − A) for m <= K, P(X = K+1) = A^K."""
    p = [a ** (m - 1) * (1 - a) for m in range(1, k + 1)] + [a**k]
    assert sum(p) == pytest.approx(1.0, rel=1e-12)
    mean = sum(m * pm for m, pm in zip(range(1, k + 2), p, strict=True))
    var = sum(m * m * pm for m, pm in zip(range(1, k + 2), p, strict=True)) - mean**2
    s = Speculative(method="eagle", draft_tokens=k, acceptance_rate=a, draft_layers=1)
    assert s.tokens_per_step == pytest.approx(mean, rel=1e-12)
    assert s.tokens_per_step_variance == pytest.approx(var, rel=1e-9)


@pytest.mark.parametrize(("tau", "k"), [(2.37, 3), (1.85, 1), (2.94, 3), (2.63, 7), (1.0, 2)])
def test_mean_acceptance_length_inverts(tau: float, k: int) -> None:
    a = acceptance_for_tokens_per_step(tau, k)
    assert 0.0 <= a < 1.0
    assert tokens_per_step(a, k) == pytest.approx(tau, abs=1e-12)
    with pytest.raises(ValueError):
        acceptance_for_tokens_per_step(k + 1.0, k)


# ------------------------------------------------------------------------ defaults and sources


def test_mtp_default_is_the_deepseek_report_lower_end(catalog: Catalog) -> None:
    s = _spec(catalog, "mtp", model="deepseek-v3")
    assert (s.draft_tokens, s.acceptance_rate, s.draft_layers) == (1, 0.85, 1)
    assert s.tokens_per_step == pytest.approx(1.85)
    assert s.sources == {
        "acceptance_rate": "deepseek-v3-technical-report",
        "draft_layers": "hf-deepseek-v3-config",
        "draft_tokens": "deepseek-v3-technical-report",
    }
    report = next(r for r in s.references if r.id == "deepseek-v3-technical-report")
    assert "2412.19437" in (report.url or "") and "85%" in (report.note or "")
    assert s.warnings == ()  # deepseek-v3 ships an MTP head (catalogs/speculative.yaml methods.mtp.models)


def test_mtp_on_a_model_without_a_recorded_head_warns(catalog: Catalog) -> None:
    s = _spec(catalog, "mtp")
    assert len(s.warnings) == 1 and "llama-3.1-70b" in s.warnings[0] and "multi-token-prediction head" in s.warnings[0]


def test_eagle_default_comes_from_a_measured_acceptance_length(catalog: Catalog) -> None:
    d = catalog.speculative["eagle"]
    assert (d.draft_tokens, d.mean_acceptance_length, d.draft_layers) == (3, 2.37, 1)
    s = _spec(catalog, "eagle")
    assert s.draft_tokens == 3
    assert s.tokens_per_step == pytest.approx(2.37, abs=1e-12)  # the card's figure, back from A
    assert s.acceptance_rate == pytest.approx(0.6564, abs=1e-4)
    assert s.sources["acceptance_rate"] == "redhat-llama4-maverick-eagle3-card"
    assert s.sources["draft_layers"] == "redhat-ai-inference-server-speculators"
    for ref in s.references:
        assert ref.title and ref.url and ref.as_of


def test_given_figures_override_defaults_and_say_so(catalog: Catalog) -> None:
    s = _spec(catalog, "eagle", 5, 0.8)
    assert (s.draft_tokens, s.acceptance_rate) == (5, 0.8)
    assert s.sources["draft_tokens"] == "given" and s.sources["acceptance_rate"] == "given"


@pytest.mark.parametrize(
    ("k", "a", "field"), [(None, None, "draft_tokens"), (4, None, "acceptance_rate"), (None, 0.5, "draft_tokens")]
)
def test_ngram_has_no_published_default(catalog: Catalog, k: int | None, a: float | None, field: str) -> None:
    with pytest.raises(InputError, match=rf"speculative\.{field}: method ngram has no published default"):
        _spec(catalog, "ngram", k, a)
    s = _spec(catalog, "ngram", 4, 0.5)
    assert s.draft_layers == 0 and draft_cost_frac(s, catalog.models["llama-3.1-70b"]) == 0.0


def _overlay(tmp_path: Path, methods: dict[str, dict[str, object]]) -> Path:
    """A catalog directory whose speculative.yaml holds ``methods`` (figures as YAML flow values)."""
    d = tmp_path / "overlay"
    d.mkdir(exist_ok=True)
    lines = ["schema_version: 1", "methods:"]
    for method, figures in methods.items():
        lines.append(f"  {method}:")
        lines += [f"    {k}: {v}" for k, v in figures.items()]
    (d / "speculative.yaml").write_text("\n".join(lines) + "\n")
    return d


SOURCE = "vllm-ngram-speculation-docs"  # any source id of the built-in sources.yaml


def test_a_catalog_overlay_replaces_a_method(tmp_path: Path) -> None:
    overlay = _overlay(tmp_path, {"eagle": {"source": SOURCE, "draft_tokens": 2, "acceptance_rate": 0.75, "draft_layers": 1}})
    cat = load_catalog([overlay])
    s = resolve_speculative("eagle", None, None, cat, "llama-3.1-70b", lambda f: f)
    assert (s.draft_tokens, s.acceptance_rate) == (2, 0.75)
    assert cat.speculative["mtp"].acceptance_rate == 0.85  # the other methods stay


@pytest.mark.parametrize(
    ("method", "figures", "needle"),
    [
        ("eagle", {"draft_tokens": 3, "acceptance_rate": 0.7, "mean_acceptance_length": 2.5}, "not both"),
        ("eagle", {"draft_tokens": 3, "mean_acceptance_length": 4}, "below"),
        ("eagle", {"draft_tokens": None, "mean_acceptance_length": 2}, "give draft_tokens"),
        ("eagle", {"draft_tokens": 3, "acceptance_rate": 0.7, "source": "no-such-source"}, "no-such-source"),
        ("mtp", {"draft_tokens": 1, "acceptance_rate": 0.8, "models": "[no-such-model]"}, "no-such-model"),
        ("medusa", {"draft_tokens": 3}, "medusa"),
    ],
)
def test_a_bad_overlay_is_one_catalog_error(tmp_path: Path, method: str, figures: dict[str, object], needle: str) -> None:
    entry: dict[str, object] = {"source": SOURCE, "draft_layers": 1, **figures}
    entry = {k: ("null" if v is None else v) for k, v in entry.items()}
    with pytest.raises((CatalogError, InputError), match=needle):
        load_catalog([_overlay(tmp_path, {method: entry})])


# --------------------------------------------------------------------------------- perf core


def test_a_decode_iteration_is_verify_plus_draft(catalog: Catalog) -> None:
    spec = _spec(catalog, "eagle")
    plain, fast = _replicas(catalog, spec)
    ctx = 2150.0
    for b in (1, 16, 64):
        verify = fast.verify_step(b, ctx)
        assert verify.tokens == b * 4  # K + 1 queries per sequence
        draft = 3 * 1 / 80 * plain.decode_step(b, ctx).latency_s  # K × draft_layers / num_layers of a decode step
        assert fast.decode_iteration_s(b, ctx) == pytest.approx(verify.latency_s + draft, rel=1e-12)
        assert fast.decode_s(b, ctx) == pytest.approx(fast.decode_iteration_s(b, ctx) / spec.tokens_per_step, rel=1e-12)
    assert plain.decode_s(8, ctx) == plain.decode_step(8, ctx).latency_s  # no speculation: unchanged


def test_tpot_falls_when_latency_bound_and_gains_shrink_when_compute_bound(catalog: Catalog) -> None:
    """Memory-bound batches: one weight read verifies K+1 tokens, so TPOT falls by about (1 + draft)/E. Large
    batches: the verify step's (K+1)× GEMM work makes it compute-bound and the gain shrinks; on 4x A100 at batch
    256 EAGLE's TPOT is above plain decoding's."""
    spec = _spec(catalog, "eagle")
    ctx = 2150.0
    plain, fast = _replicas(catalog, spec)
    ratios = [fast.decode_s(b, ctx) / plain.decode_s(b, ctx) for b in (1, 8, 32, 64, 128, 256, 512)]
    assert ratios[0] == pytest.approx((1 + 3 / 80) / spec.tokens_per_step, rel=0.02)
    assert all(r1 <= r2 + 1e-9 for r1, r2 in itertools.pairwise(ratios))
    assert ratios[0] < 0.5 and ratios[-1] > 0.9
    assert fast.verify_step(1, ctx).bound == "memory" and fast.verify_step(512, ctx).bound == "compute"
    a_plain, a_fast = _replicas(catalog, spec, gpu="a100-sxm-80gb")
    assert a_fast.decode_s(256, ctx) > a_plain.decode_s(256, ctx)


def test_capacity_and_occupancy_follow_littles_law(catalog: Catalog) -> None:
    spec = _spec(catalog, "eagle")
    wl = _workload(catalog, None)
    cls = wl.classes[0]
    plain, fast = _replicas(catalog, spec)
    for max_batch in (32, 128):
        assert decode_max_rate(fast, cls, max_batch) > decode_max_rate(plain, cls, max_batch)
    # Little: a sequence stays E[OSL]/E iterations, n̄ = λ·(E[OSL]/E)·T_it; TPOT at the SLO quantile is under the target
    lat = decode_tpot(fast, cls, 4.0, 128)
    n_mean = lat.utilization_frac * 128
    ctx = mean_context_tokens(cls)
    assert n_mean == pytest.approx(
        4.0 * cls.output_tokens.mean / spec.tokens_per_step * fast.decode_iteration_s(n_mean, ctx), rel=1e-6
    )
    assert lat.p50_s == pytest.approx(fast.decode_s(n_mean, ctx), rel=1e-12)
    assert lat.pct_s > lat.p50_s  # batch-size and acceptance spreads
    # busy time per request: (E[OSL]/E) iterations of T_it shared by the batch
    pool = Pool(role="decode", gpu="h100-sxm", tp=4, replicas=1, max_batch=128)
    busy = busy_parts_s(fast, pool, cls, None)[1]
    assert busy == pytest.approx(cls.output_tokens.mean / spec.tokens_per_step * fast.decode_iteration_s(128, ctx) / 128)
    colocated = Pool(role="colocated", gpu="h100-sxm", tp=4, replicas=1, max_batch=64, token_budget=2048)
    iterations = cls.output_tokens.mean / spec.tokens_per_step
    t_mix = fast.mixed_s(2048 - 64, 0.0, 64, ctx)  # the chunk's attention term does not matter for the ratio below
    assert busy_parts_s(fast, colocated, cls, None)[1] == pytest.approx(iterations * t_mix / 64, rel=0.2)


def test_the_acceptance_spread_shrinks_with_output_length(catalog: Catalog) -> None:
    spec = _spec(catalog, "eagle")
    _, fast = _replicas(catalog, spec)
    cls = _workload(catalog, None).classes[0]
    sigma = math.sqrt(spec.tokens_per_step_variance)
    assert acceptance_spread(fast, cls, 0.5) == 0.0
    s99 = acceptance_spread(fast, cls, 0.99)
    assert 0.05 < s99 < 0.5
    # one length: the normal quantile of σ/√((L−1)E)
    from planner.perf.serving import acceptance_spread_over

    one = acceptance_spread_over(spec, np.array([301.0]), 0.99)
    assert one == pytest.approx(2.3263 * sigma / math.sqrt(300 * spec.tokens_per_step), rel=1e-3)


def test_kv_per_sequence_grows_by_the_draft_tokens(catalog: Catalog) -> None:
    spec = _spec(catalog, "eagle")
    plain, fast = _replicas(catalog, spec)
    assert (plain.draft_kv_tokens, fast.draft_kv_tokens) == (0, 3)
    m = plain.memory.max_kv_tokens
    batch = 100
    length = m // batch  # batch·length <= m < batch·(length + 3)
    doc = {"mean": length // 2, "p50": length // 2, "p90": length // 2, "p99": length // 2}
    wl = api.resolve_workload(
        parse_workload(
            {
                "model": "llama-3.1-70b",
                "classes": [
                    {
                        "name": "c",
                        "rate_rps": 1,
                        "input_tokens": doc,
                        "output_tokens": {k: length - v for k, v in doc.items()},
                        "slo": {"ttft_p99_ms": 1000, "tpot_p99_ms": 100},
                    }
                ],
            },
            "t",
        ),
        catalog,
    )
    cls = wl.classes[0]
    assert kv_fits(plain, cls, batch)
    assert not kv_fits(fast, cls, batch)


def test_the_drafter_weights_take_their_share_of_memory(catalog: Catalog) -> None:
    plain = make_replica(catalog, _workload(catalog, None), "h100-sxm", 4)
    fast = make_replica(catalog, _workload(catalog, {"method": "eagle"}), "h100-sxm", 4)
    assert plain is not None and fast is not None
    assert fast.memory.weight_bytes == pytest.approx(plain.memory.weight_bytes * (1 + 1 / 80), rel=1e-12)
    assert fast.memory.max_kv_tokens < plain.memory.max_kv_tokens


def test_every_command_builds_the_same_replica(catalog: Catalog) -> None:
    """size, check and simulate build replicas through make_replica; estimate serve through serve_replica: the
    same speculative settings, the same steps."""
    from planner.api.serve import serve_replica

    wl = _workload(catalog, {"method": "eagle"})
    a = make_replica(catalog, wl, "h100-sxm", 4)
    b = serve_replica(catalog, catalog.models["llama-3.1-70b"], catalog.gpus["h100-sxm"], 4, "bf16", speculative=wl.speculative)
    assert a is not None and a.speculative == b.speculative
    assert a.memory == b.memory
    assert a.decode_s(32, 2150) == b.decode_s(32, 2150)


# ---------------------------------------------------------------------------------- simulator


@pytest.fixture(scope="module")
def sims() -> dict[str, object]:
    cat = api.load_catalog(())
    out: dict[str, object] = {}
    for name, spec in (
        ("plain", None),
        ("eagle", {"method": "eagle"}),
        ("ngram", {"method": "ngram", "draft_tokens": 4, "acceptance_rate": 0.5}),
    ):
        wl = _workload(cat, spec)
        plan = api.size(wl, cat)
        out[name] = simulate(wl, plan.plan.deployment, cat, SimOptions(requests=8000, seed=3))
    return out


@pytest.mark.parametrize("name", ["eagle", "ngram"])
def test_simulated_tpot_matches_the_analytic_one(sims: dict[str, object], name: str) -> None:
    """Llama-3.1-70B on H100 at 8 req/s: the simulator draws every sequence's accepted drafts each iteration;
    its TPOT p50 and p99 are within 15 % of the analytic ones (measured: within 2 %)."""
    sim = sims[name]
    assert not sim.saturated  # type: ignore[attr-defined]
    a, s = sim.analytic.classes[0], sim.classes[0]  # type: ignore[attr-defined]
    assert a.tpot_p50_s == pytest.approx(s.tpot.p50, rel=0.15)
    assert a.tpot_at_slo_s == pytest.approx(s.tpot.at_slo, rel=0.15)


def test_speculation_lowers_simulated_tpot(sims: dict[str, object]) -> None:
    plain, fast = sims["plain"].classes[0], sims["eagle"].classes[0]  # type: ignore[attr-defined]
    assert fast.tpot.p50 < 0.6 * plain.tpot.p50


def test_simulation_is_deterministic_and_seeded(catalog: Catalog) -> None:
    wl = _workload(catalog, {"method": "eagle"}, rate=4.0)
    dep = api.size(wl, catalog).plan.deployment

    def run(seed: int) -> np.ndarray:
        sim = simulate(wl, dep, catalog, SimOptions(requests=1500, seed=seed))
        return np.asarray(sim.result.done_s)

    first = run(5)
    assert np.array_equal(first, run(5))
    assert not np.array_equal(first, run(6))


# ---------------------------------------------------------------------------------- commands


def test_size_gives_a_plan_with_the_settings_and_their_sources(run_cli: Run) -> None:
    code, out, err = run_cli("size", str(EXAMPLE), "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "ok"
    sp = doc["inputs"]["speculative"]
    assert sp["method"] == "eagle" and sp["draft_tokens"] == 3
    assert sp["tokens_per_step"] == pytest.approx(2.37)
    assert sp["sources"]["acceptance_rate"] == "redhat-llama4-maverick-eagle3-card"
    assert doc["data"]["predicted"]["tpot_at_slo_ms"] <= 20.0 * (1 + 1e-6)
    code, out, _ = run_cli("size", str(EXAMPLE))
    assert code == 0 and "speculative: eagle, K 3" in out


def test_speculation_makes_the_tight_tpot_example_cheaper(tmp_path: Path, run_cli: Run) -> None:
    """examples/workloads/assistant_eagle.yaml: TPOT p99 20 ms on H100. Without EAGLE the decode pool needs TP 8
    replicas; with it TP 4 ones meet the target."""
    plain = tmp_path / "plain.yaml"
    plain.write_text("\n".join(line for line in EXAMPLE.read_text().splitlines() if not line.startswith("speculative")))
    docs = {}
    for name, path in (("eagle", EXAMPLE), ("plain", plain)):
        code, out, err = run_cli("size", str(path), "-f", "json")
        assert code == 0, err
        docs[name] = json.loads(out)["data"]
    assert docs["eagle"]["cost"]["usd_per_hour"] < docs["plain"]["cost"]["usd_per_hour"]
    assert docs["eagle"]["predicted"]["tpot_p50_ms"] < docs["plain"]["predicted"]["tpot_p50_ms"]


def test_a_plan_round_trips_through_check_with_the_same_settings(tmp_path: Path, run_cli: Run) -> None:
    plan = tmp_path / "plan.yaml"
    code, _, err = run_cli("size", str(EXAMPLE), "-f", "yaml", "-o", str(plan))
    assert code == 0, err
    code, out, err = run_cli("check", str(plan), "-f", "json")
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["data"]["findings"] == []
    assert doc["inputs"]["speculative"]["acceptance_rate"] == pytest.approx(acceptance_for_tokens_per_step(2.37, 3))


SERVE = ("estimate", "serve", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--tp", "4", "--isl", "2000", "--osl", "300")


def _serve(run_cli: Run, *extra: str) -> dict[str, object]:
    code, out, err = run_cli(*SERVE, *extra, "-f", "json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_estimate_serve_with_speculation(run_cli: Run) -> None:
    plain = _serve(run_cli, "-c", "4")
    fast = _serve(run_cli, "-c", "4", "--speculative", "eagle")
    assert fast["inputs"]["speculative"]["tokens_per_step"] == pytest.approx(2.37)  # type: ignore[index]
    assert fast["data"]["tokens_per_step"] == pytest.approx(2.37)  # type: ignore[index]
    assert fast["data"]["tpot_ms"]["mean"] < 0.6 * plain["data"]["tpot_ms"]["mean"]  # type: ignore[index]
    assert fast["data"]["output_tokens_per_s_per_user"] > plain["data"]["output_tokens_per_s_per_user"]  # type: ignore[index]
    assert "speculative" not in plain["inputs"] and "tokens_per_step" not in plain["data"]  # type: ignore[operator]
    given = _serve(run_cli, "-c", "4", "--speculative", "ngram:4:0.5")
    assert given["inputs"]["speculative"]["sources"]["acceptance_rate"] == "given"  # type: ignore[index]
    assert given["inputs"]["speculative"]["tokens_per_step"] == pytest.approx(1.9375)  # type: ignore[index]
    code, out, _ = run_cli(*SERVE, "-c", "4", "--speculative", "eagle")
    assert code == 0 and "speculative: eagle" in out and "tokens per decode iteration" in out


def test_estimate_serve_gain_shrinks_at_high_concurrency(run_cli: Run) -> None:
    def ratio(c: str) -> float:
        fast = _serve(run_cli, "-c", c, "--speculative", "eagle")["data"]["tpot_ms"]["mean"]  # type: ignore[index]
        plain = _serve(run_cli, "-c", c)["data"]["tpot_ms"]["mean"]  # type: ignore[index]
        return float(fast) / float(plain)

    assert ratio("1") < ratio("128")


def test_estimate_serve_mtp_on_deepseek(run_cli: Run) -> None:
    args = ("estimate", "serve", "-m", "deepseek-v3", "-g", "h200-sxm", "--tp", "8", "--precision", "fp8")
    args += ("--isl", "2000", "--osl", "500", "-c", "8", "-f", "json")
    code, out, err = run_cli(*args, "--speculative", "mtp")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["warnings"] == []
    assert doc["inputs"]["speculative"]["tokens_per_step"] == pytest.approx(1.85)
    code, out, _ = run_cli(*args)
    assert json.loads(out)["data"]["tpot_ms"]["mean"] > doc["data"]["tpot_ms"]["mean"]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("medusa", "unknown method"),
        ("eagle:0", "draft tokens K"),
        ("eagle:17", "draft tokens K"),
        ("eagle:x", "draft tokens K"),
        ("eagle:3:1.0", "acceptance rate A"),
        ("eagle:3:-0.1", "acceptance rate A"),
        ("eagle:3:nan", "acceptance rate A"),
        ("ngram", "no published default draft_tokens"),
        ("ngram:4", "no published default acceptance_rate"),
        ("mtp:1:0.8:2", "METHOD[:K[:A]]"),
    ],
)
def test_bad_speculative_flag_is_one_error_line(run_cli: Run, value: str, needle: str) -> None:
    assert_input_error(run_cli(*SERVE, "-c", "4", "--speculative", value), "--speculative", needle)


def test_parse_flag_defaults_empty_fields(catalog: Catalog) -> None:
    s = parse_speculative_flag("eagle::0.7", catalog, "llama-3.1-70b")
    assert (s.draft_tokens, s.acceptance_rate) == (3, 0.7)
    assert s.sources["draft_tokens"] == "redhat-llama4-maverick-eagle3-card"


@pytest.mark.parametrize(
    ("speculative", "needle"),
    [
        ("{method: ngram}", "speculative.draft_tokens"),
        ("{method: ngram, draft_tokens: 3}", "speculative.acceptance_rate"),
        ("{method: eagle, acceptance_rate: 1.0}", "speculative.acceptance_rate"),
        ("{method: eagle, draft_tokens: 0}", "speculative.draft_tokens"),
        ("{method: medusa}", "speculative.method"),
        ("{method: eagle, drafts: 3}", "speculative.drafts"),
    ],
)
def test_bad_workload_speculative_is_one_error_line(tmp_path: Path, run_cli: Run, speculative: str, needle: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(EXAMPLE.read_text().replace("speculative: {method: eagle}", f"speculative: {speculative}"))
    assert_input_error(run_cli("size", str(path)), str(path), needle)
