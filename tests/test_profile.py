"""The workload profile: numbers worked out by hand, synth properties, classes, phase share, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import Run, assert_input_error

from planner import api
from planner.domain import Catalog
from planner.errors import InputError
from planner.profile.analysis import Trace, arrivals, choose_classes, histogram, phase_share_for, prefix_reuse, profile
from planner.sim.synth import SynthSpec, synthesize

# Five requests at 0, 1, 3, 6, 10 s. Gaps 1, 2, 3, 4: mean 2.5, population variance 1.25, cv² = 0.2.
# Mean rate 5 / 10 s = 0.5. Closed 5 s windows: [0,5] and [1,6] hold 3 requests, so the peak is 0.6.
# Inputs 100, 200, 300, 400, 1000: mean 400; p90 at rank 3.6 = 400 + 0.6·600 = 760; p99 = 400 + 0.96·600 = 976.
# Outputs 10..50: mean 30, p90 = 46, p99 = 49.6. corr = 20000 / sqrt(500000·1000) = 2/√5.
FIVE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2023-11-16 18:00:03.0000000,300,30\n"  # out of order on purpose: the profile sorts by arrival
    "2023-11-16 18:00:00.0000000,100,10\n"
    "2023-11-16 18:00:01.0000000,200,20\n"
    "2023-11-16 18:00:06.0000000,400,40\n"
    "2023-11-16 18:00:10.0000000,1000,50\n"
)


def _trace(times: list[float], inp: list[int], out: list[int]) -> Trace:
    return Trace(
        arrival_s=np.array(times, dtype=np.float64),
        input_tokens=np.array(inp, dtype=np.int64),
        output_tokens=np.array(out, dtype=np.int64),
    )


@pytest.fixture
def five(tmp_path: Path) -> Path:
    path = tmp_path / "five.csv"
    path.write_text(FIVE)
    return path


def test_five_rows_by_hand(five: Path, run_cli: Run) -> None:
    code, out, err = run_cli("profile", str(five), "--window-s", "5", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    d = doc["data"]
    assert doc["command"] == "profile" and doc["status"] == "ok"
    assert d["num_requests"] == 5
    assert d["duration_s"] == pytest.approx(10.0, abs=1e-12)
    assert d["rate_rps"]["mean"] == pytest.approx(0.5, abs=1e-12)
    assert d["rate_rps"]["peak"] == pytest.approx(0.6, abs=1e-12)
    assert d["interarrival_cv2"] == pytest.approx(0.2, abs=1e-12)
    assert d["input_tokens"] == pytest.approx({"mean": 400, "p50": 300, "p90": 760, "p99": 976, "max": 1000}, abs=1e-9)
    assert d["output_tokens"] == pytest.approx({"mean": 30, "p50": 30, "p90": 46, "p99": 49.6, "max": 50}, abs=1e-9)
    assert d["corr_input_output"] == pytest.approx(2 / math.sqrt(5), abs=1e-12)
    assert d["hourly_rate_rps"] == pytest.approx([5 / 3600])
    assert d["tokens_per_s"] == pytest.approx({"input": 200.0, "output": 15.0})
    assert d["start"] == "2023-11-16T18:00:00.000000000"
    assert d["prefix_reuse"] is None and d["phase_share"] is None


def test_peak_window_longer_than_trace_is_the_mean() -> None:
    a = arrivals(np.array([0.0, 1.0, 3.0, 6.0, 10.0]), 60.0)
    assert (a.window_s, a.peak_rps) == (10.0, 0.5)


def test_json_is_byte_identical(five: Path, run_cli: Run) -> None:
    args = ("profile", str(five), "--classes", "2", "--model", "llama-3.1-8b", "--format", "json")
    first, second = run_cli(*args), run_cli(*args)
    assert first[0] == 0 and first[1] == second[1]


def test_histogram_power_of_two_bins() -> None:
    h = histogram(np.array([0, 1, 2, 3, 4, 1000], dtype=np.int64))
    assert h.edges[:4] == (0.0, 1.0, 2.0, 4.0)
    assert h.counts == (1, 1, 2, 1, 0, 0, 0, 0, 0, 0, 1)  # 1000 in [512, 1024)


def test_prefix_reuse_by_hand() -> None:
    # [1,2,3] misses all; [1,2,4] hits 1,2; [5,2] misses at 5 (2 no longer counts); [1,2,3,9] hits 3; [7,7]
    # repeats within one request (not an earlier one): 0 hits. 5 hits of 14 blocks.
    blocks = [[1, 2, 3], [1, 2, 4], [5, 2], [1, 2, 3, 9], [7, 7]]
    offsets = np.cumsum([0] + [len(b) for b in blocks])
    t = Trace(
        arrival_s=np.arange(5.0),
        input_tokens=np.full(5, 1000, dtype=np.int64),
        output_tokens=np.ones(5, dtype=np.int64),
        hash_values=np.array([h for b in blocks for h in b], dtype=np.int64),
        hash_offsets=offsets.astype(np.int64),
    )
    r = prefix_reuse(t)
    assert r is not None and (r.hit_blocks, r.num_blocks) == (5, 14) and r.hit_frac == pytest.approx(5 / 14)
    # The same requests out of order on disk: sorting keeps each request's blocks.
    shuffled = Trace(
        arrival_s=np.array([4.0, 0.0, 1.0, 2.0, 3.0]),
        input_tokens=t.input_tokens,
        output_tokens=t.output_tokens,
        hash_values=np.array([7, 7, 1, 2, 3, 1, 2, 4, 5, 2, 1, 2, 3, 9], dtype=np.int64),
        hash_offsets=np.array([0, 2, 5, 8, 10, 14], dtype=np.int64),
    )
    r2 = prefix_reuse(shuffled.sorted())
    assert r2 is not None and r2.hit_blocks == 5


def test_synth_poisson_cv2_and_rate() -> None:
    """cv² = 1 (exponential gaps): the sample cv² of 200k gaps has sd ≈ √(8/n) ≈ 0.006; allow 0.03."""
    t = synthesize(SynthSpec(requests=200_000, rate_rps=50, cv2=1.0, isl_mean=2000, osl_mean=300, seed=1))
    p = profile(t)
    assert p.arrivals.interarrival_cv2 == pytest.approx(1.0, abs=0.03)
    assert p.arrivals.mean_rps == pytest.approx(50, rel=0.01)
    assert p.input_tokens.mean == pytest.approx(2000, rel=0.02)
    assert p.output_tokens.mean == pytest.approx(300, rel=0.02)
    assert p.corr_input_output is not None and abs(p.corr_input_output) < 0.02


def test_synth_gamma_is_bursty() -> None:
    t = synthesize(SynthSpec(requests=200_000, rate_rps=10, cv2=4.0, seed=2))
    assert profile(t).arrivals.interarrival_cv2 == pytest.approx(4.0, rel=0.1)


def test_synth_diurnal_cycle() -> None:
    """Rate 1 ± 50% over 24 h: the busiest hour runs near 3× the quietest (≥ 2.5× allowed)."""
    p = profile(synthesize(SynthSpec(requests=172_800, rate_rps=1.0, diurnal=True, seed=3)))
    hourly = np.array(p.hourly_rate_rps[:-1])
    assert hourly.max() / hourly.min() > 2.5
    assert p.arrivals.mean_rps == pytest.approx(1.0, rel=0.05)


def _two_groups(n: int = 4000) -> Trace:
    rng = np.random.default_rng(0)
    half = n // 2
    inp = np.concatenate([rng.lognormal(np.log(200), 0.3, half), rng.lognormal(np.log(8000), 0.3, n - half)])
    out = np.concatenate([rng.lognormal(np.log(20), 0.3, half), rng.lognormal(np.log(800), 0.3, n - half)])
    order = rng.permutation(n)
    return Trace(
        arrival_s=np.sort(rng.uniform(0, 1000, n)),
        input_tokens=np.rint(inp[order]).astype(np.int64),
        output_tokens=np.rint(out[order]).astype(np.int64),
    )


def test_auto_classes_find_two_separated_groups() -> None:
    p = profile(_two_groups(), classes="auto")
    assert [c.name for c in p.classes] == ["c1", "c2"]
    assert [c.share_frac for c in p.classes] == pytest.approx([0.5, 0.5], abs=0.01)
    assert p.classes[0].input_tokens.p50 == pytest.approx(200, rel=0.05)
    assert p.classes[1].output_tokens.p50 == pytest.approx(800, rel=0.05)
    assert sum(c.arrivals.mean_rps for c in p.classes) == pytest.approx(p.arrivals.mean_rps, rel=0.01)
    assert p.silhouette[2] >= 0.5


@pytest.mark.slow
def test_auto_classes_keep_one_blob_whole() -> None:
    t = synthesize(SynthSpec(requests=5000, rate_rps=5, seed=4))
    p = profile(t, classes="auto")
    assert [c.name for c in p.classes] == ["default"] and max(p.silhouette.values()) < 0.5


def test_classes_are_deterministic_and_validated() -> None:
    t = _two_groups()
    a, b = choose_classes(t, 3), choose_classes(t, 3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(InputError, match="--classes 0"):
        choose_classes(t, 0)


def test_phase_share_flops_and_classification(catalog: Catalog) -> None:
    model = api.resolve_model(catalog, "llama-3.1-8b")
    gpu = api.resolve_gpu(catalog, "h100-sxm")

    def share(inp: int, out: int) -> object:
        t = _trace([0.0, 1.0], [inp, inp], [out, out])
        return phase_share_for(
            t, model, gpu, catalog.engine, lambda tp: api.hardware(catalog, gpu, tp), tp=None, precision="bf16"
        )

    s = share(1000, 10)
    na, nl, d = model.num_active_params, model.num_layers, model.hidden_size
    prefill = 2 * na * 1000 + 2 * nl * d * 1000**2
    decode = 2 * na * 10 + 4 * nl * d * (10 * 1000 + 10 * 9 / 2)
    assert s.prefill_flop_frac == pytest.approx(prefill / (prefill + decode), rel=1e-12)  # type: ignore[attr-defined]
    assert s.prefill_token_frac == pytest.approx(1000 / 1010)  # type: ignore[attr-defined]
    assert s.tp == 1  # type: ignore[attr-defined]
    assert share(8000, 1).classification == "prefill-dominant"  # type: ignore[attr-defined]
    assert share(20, 2000).classification == "decode-dominant"  # type: ignore[attr-defined]


def test_workload_yaml_is_accepted_by_size(tmp_path: Path, catalog: Catalog, run_cli: Run) -> None:
    trace, out = tmp_path / "t.csv", tmp_path / "w.yaml"
    code, _, err = run_cli(
        "trace", "synth", "--format-out", "azure", "-n", "3000", "--rate-rps", "4", "--seed", "9", "-o", str(trace)
    )
    assert code == 0, err
    code, _, err = run_cli(
        "profile", str(trace), "--model", "llama-3.1-70b", "--classes", "2",
        "--ttft-p99-ms", "2000", "--tpot-p99-ms", "80", "-o", str(out), "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    spec = api.load_workload_spec(out)
    assert [c.name for c in spec.classes] == ["c1", "c2"]
    workload = api.resolve_workload(spec, catalog, str(out))
    assert {c.slo.ttft_s for c in workload.classes} == {2.0}
    doc = json.loads(run_cli("profile", str(trace), "--format", "json")[1])["data"]
    assert sum(c.rate_rps for c in spec.classes) == pytest.approx(doc["rate_rps"]["peak"], rel=1e-4)


def test_missing_slo_is_named(tmp_path: Path, run_cli: Run) -> None:
    trace, out = tmp_path / "t.csv", tmp_path / "w.yaml"
    run_cli("trace", "synth", "-n", "500", "-o", str(trace))
    code, _, err = run_cli("profile", str(trace), "--model", "llama-3.1-70b", "--ttft-p99-ms", "1000", "-o", str(out))
    assert code == 0 and "missing --tpot-p99-ms" in err
    assert_input_error(run_cli("size", str(out)), f"error: {out}:", "slo: missing", "--tpot-p99-ms")


def test_output_needs_model_and_writes_nothing_on_error(tmp_path: Path, run_cli: Run) -> None:
    trace, out = tmp_path / "t.csv", tmp_path / "w.yaml"
    run_cli("trace", "synth", "-n", "200", "-o", str(trace))
    assert_input_error(run_cli("profile", str(trace), "-o", str(out)), "--model")
    assert_input_error(run_cli("profile", str(trace), "--model", "no-such-model", "-o", str(out)))
    assert not out.exists()


def test_table_output_draws_histograms(five: Path, run_cli: Run) -> None:
    code, out, _ = run_cli("profile", str(five), "--model", "llama-3.1-8b")
    assert code == 0
    assert "input (tokens, power-of-two bins)" in out and "█" in out and "prefill share" in out


def test_unsorted_timestamps_are_sorted_with_a_warning_and_a_count(tmp_path: Path, run_cli: Run) -> None:
    path = tmp_path / "unsorted.csv"
    path.write_text("arrival_s,input_tokens,output_tokens\n0.0,100,10\n2.0,200,20\n1.0,300,30\n4.0,400,40\n3.0,500,50\n")
    code, out, err = run_cli(
        "profile", str(path), "--columns", "time=arrival_s,input=input_tokens,output=output_tokens", "--format", "json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["data"]["out_of_order_requests"] == 2  # 1.0 after 2.0, 3.0 after 4.0
    assert any("not sorted (2 requests" in w for w in doc["warnings"])
    assert doc["data"]["duration_s"] == pytest.approx(4.0)
    assert doc["data"]["interarrival_cv2"] == pytest.approx(0.0)  # sorted gaps are all 1 s
