"""Per-class prefix reuse and the day's rate profile that ``planner profile -o`` writes for ``planner size``:
numbers worked out by hand on small hand-built traces."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import Run

from planner import api
from planner.io.workload import MAX_TOKENS
from planner.profile.analysis import PrefixReuse, Trace, hour_of_day, prefix_reuse
from planner.report.profile import HIT_FRAC_MAX, MAX_WORKING_SET_TOKENS, _prefix_cache

# A Mooncake-format trace (timestamp in ms, 512-token blocks) of two length classes. A request of L prompt
# tokens whose first h blocks an earlier request carried saves min(L, 512·h) tokens, at most L − 1.
#   long (c2, ~5,000 in / ~500 out):
#     t=0     L=5000 [1..10]              all new                                   0
#     t=2000  L=5120 [1..9, 11]           9 hits (11 new)            min(5119, 4608) = 4608
#     t=4000  L=5000 [1..10]              10 hits, whole prompt      min(4999, 5000) = 4999 (capped)
#   short (c1, ~1,100 in / ~10 out): its prefixes were first sent by the long class
#     t=1000  L=1100 [1, 2, 20]           2 hits (20 new)            min(1099, 1024) = 1024
#     t=3000  L=1000 [1, 2]               2 hits, whole prompt       min(999, 1000)  = 999 (capped)
#     t=5000  L=1200 [30, 1, 2]           30 is new: the walk stops                     0
#     t=6000  L=1100 [1, 2, 20]           3 hits, whole prompt       min(1099, 1536) = 1099 (capped)
# c2: 9,607 of 15,120 prompt tokens; c1: 3,122 of 4,400; trace: 12,729 of 19,520.
# Working sets, each distinct hit block at the most tokens a hit took from it (block j of a request with cap
# L − 1 gives min(512, cap − 512·j)): c2 hits blocks 1..10, block 10 at most 4999 − 9·512 = 391 tokens (the
# t=4000 hit): 9·512 + 391 = 4,999 tokens. c1 hits 1 and 2 (512 each: t=1000) and 20 (1099 − 1024 = 75, t=6000):
# 1,099 tokens. The trace: blocks 1..10 and 20, 4,999 + 75 = 5,074 tokens.
MOONCAKE_ROWS = [
    (0, 5000, 500, list(range(1, 11))),
    (1000, 1100, 10, [1, 2, 20]),
    (2000, 5120, 520, [*range(1, 10), 11]),
    (3000, 1000, 12, [1, 2]),
    (4000, 5000, 480, list(range(1, 11))),
    (6000, 1100, 9, [1, 2, 20]),  # out of order on purpose: the profile sorts requests with their blocks
    (5000, 1200, 11, [30, 1, 2]),
]


@pytest.fixture
def mooncake(tmp_path: Path) -> Path:
    path = tmp_path / "reuse.jsonl"
    lines = [json.dumps({"timestamp": t, "input_length": i, "output_length": o, "hash_ids": h}) for t, i, o, h in MOONCAKE_ROWS]
    path.write_text("\n".join(lines) + "\n")
    return path


def _reuse(d: dict[str, object]) -> tuple[object, ...]:
    keys = ("prompt_tokens", "hit_tokens", "num_blocks", "hit_blocks", "working_set_blocks", "working_set_tokens")
    return tuple(d[k] for k in (*keys, "full_hit_requests", "block_mismatch_requests"))


def test_per_class_reuse_by_hand(mooncake: Path, run_cli: Run) -> None:
    code, out, err = run_cli("profile", str(mooncake), "--classes", "2", "--format", "json")
    assert code == 0, err
    d = json.loads(out)["data"]
    assert _reuse(d["prefix_reuse"]) == (19520, 12729, 41, 26, 11, 5074, 3, 0)
    assert d["prefix_reuse"]["hit_token_frac"] == pytest.approx(12729 / 19520, abs=1e-15)
    assert d["prefix_reuse"]["hit_frac"] == pytest.approx(26 / 41, abs=1e-15)  # blocks, as before
    c1, c2 = d["classes"]
    assert (c1["name"], c1["num_requests"], c2["name"], c2["num_requests"]) == ("c1", 4, "c2", 3)
    assert _reuse(c1["prefix_reuse"]) == (4400, 3122, 11, 7, 3, 1099, 2, 0)
    assert _reuse(c2["prefix_reuse"]) == (15120, 9607, 30, 19, 10, 4999, 1, 0)
    assert c1["prefix_reuse"]["hit_token_frac"] == pytest.approx(3122 / 4400, abs=1e-15)
    assert c2["prefix_reuse"]["hit_token_frac"] == pytest.approx(9607 / 15120, abs=1e-15)


def test_workload_gets_each_class_reuse_and_size_accepts_it(mooncake: Path, tmp_path: Path, run_cli: Run) -> None:
    out = tmp_path / "w.yaml"
    code, _, err = run_cli(
        "profile", str(mooncake), "--classes", "2", "--model", "llama-3.1-8b",
        "--ttft-p99-ms", "10000", "--tpot-p99-ms", "100", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert "less than a day: no rate_profile is written" in err  # 6 s of trace
    spec = api.load_workload_spec(out)
    by_name = {c.name: c for c in spec.classes}
    c1, c2 = by_name["c1"].prefix_cache, by_name["c2"].prefix_cache
    assert c1 is not None and c2 is not None
    assert (c1.hit_frac, c1.working_set_tokens, c1.location) == (0.709545, 1099, "prefill")  # 3122/4400 = 0.7095454...
    assert (c2.hit_frac, c2.working_set_tokens) == (0.635384, 4999)  # 9607/15120 = 0.6353835...
    assert all(c.rate_profile is None for c in spec.classes)
    code, text, err = run_cli("size", str(out), "--format", "json")
    assert code == 0, err
    assert json.loads(text)["status"] == "ok"


def test_default_class_gets_the_trace_reuse(mooncake: Path, tmp_path: Path, run_cli: Run) -> None:
    out = tmp_path / "w.yaml"
    code, _, err = run_cli("profile", str(mooncake), "--model", "llama-3.1-8b", "-o", str(out))
    assert code == 0, err
    (cls,) = yaml.safe_load(out.read_text())["classes"]
    assert cls["prefix_cache"] == {"hit_frac": 0.6521, "working_set_tokens": 5074}  # 12729/19520 = 0.65210041


def test_no_hash_ids_no_prefix_cache(tmp_path: Path, run_cli: Run) -> None:
    trace, out = tmp_path / "t.csv", tmp_path / "w.yaml"
    trace.write_text("timestamp,input_tokens,output_tokens\n0,100,10\n1,200,20\n2,300,30\n")
    code, _, err = run_cli("profile", str(trace), "--model", "llama-3.1-8b", "-o", str(out))
    assert code == 0, err
    assert "prefix_cache" not in out.read_text()


def test_blocks_fewer_than_the_prompt_count_the_rest_as_misses() -> None:
    # 1,500 tokens in 2 blocks (ceil(1500/512) = 3): the second request hits both, 1,024 tokens, and the
    # 476 tokens past its blocks are misses; 600 tokens in 1 block: its hit is capped at 599 (a full hit).
    t = Trace(
        arrival_s=np.array([0.0, 1.0, 2.0]),
        input_tokens=np.array([1500, 1500, 600], dtype=np.int64),
        output_tokens=np.ones(3, dtype=np.int64),
        hash_values=np.array([7, 8, 7, 8, 7], dtype=np.int64),
        hash_offsets=np.array([0, 2, 4, 5], dtype=np.int64),
    )
    r = prefix_reuse(t)
    assert r is not None
    assert (r.hit_tokens, r.prompt_tokens, r.block_mismatch_requests, r.full_hit_requests) == (1024 + 512, 3600, 3, 0)
    # 600 tokens, 1 block: covered min(600, 512) = 512 <= cap 599: not capped. Block 7 at most 512 tokens,
    # block 8 at most min(512, 1499 - 512) = 512: 1,024.
    assert (r.working_set_blocks, r.working_set_tokens) == (2, 1024)


def test_hit_frac_written_below_one() -> None:
    r = PrefixReuse(
        block_tokens=512, num_blocks=1, hit_blocks=1, hit_frac=1.0, prompt_tokens=10**7, hit_tokens=10**7 - 1,
        hit_token_frac=(10**7 - 1) / 10**7, working_set_blocks=1, working_set_tokens=512,
        full_hit_requests=1, block_mismatch_requests=0,
    )  # fmt: skip
    warnings: list[str] = []
    assert _prefix_cache("c", r, warnings) == {"hit_frac": HIT_FRAC_MAX, "working_set_tokens": 512}  # 6 digits: 1.0
    assert warnings == []
    assert HIT_FRAC_MAX < 1


def test_working_set_above_the_schema_limit_is_left_out() -> None:
    r = PrefixReuse(
        block_tokens=512, num_blocks=4, hit_blocks=2, hit_frac=0.5, prompt_tokens=2048, hit_tokens=1024,
        hit_token_frac=0.5, working_set_blocks=2, working_set_tokens=int(MAX_TOKENS) + 1,
        full_hit_requests=0, block_mismatch_requests=0,
    )  # fmt: skip
    warnings: list[str] = []
    assert _prefix_cache("c", r, warnings) == {"hit_frac": 0.5}
    assert len(warnings) == 1 and "working_set_tokens is left out" in warnings[0]
    assert MAX_WORKING_SET_TOKENS == MAX_TOKENS


# --- the day ----------------------------------------------------------------------------------


def test_hour_of_day_mean_over_whole_days() -> None:
    """Two whole days from t = 0 (numeric timestamps: hour 0 is the first request's hour). Hour h of day d
    holds h + 1 + 2d arrivals; the last arrival, at exactly 48 h, falls in hour 0 of day 3. Every hour is
    observed 2 × 3600 s, so hour h runs at (2h + 4)/7200 req/s (hour 0 one more: 5/7200)."""
    times = [
        3600.0 * (24 * d + h) + 3600.0 * (j + 0.5) / (h + 1 + 2 * d)
        for d in range(2)
        for h in range(24)
        for j in range(h + 1 + 2 * d)
    ]
    t = np.array([0.0, *times, 2 * 86_400.0])
    day, by_class = hour_of_day(t, None)
    assert by_class == []
    assert (day.origin, day.first_hour, day.complete, day.span_days) == ("first_request", 0, True, 2.0)
    assert day.exposure_s == (7200.0,) * 24
    expected = [(2 * h + 4) / 7200 for h in range(24)]
    expected[0] += 2 / 7200  # the arrivals at 0 s and at 48 h
    assert day.hourly_rps == pytest.approx(expected, rel=1e-12)


def test_short_trace_leaves_hours_unobserved() -> None:
    day, _ = hour_of_day(np.array([0.0, 1800.0, 5400.0]), None)  # 1.5 h
    assert not day.complete
    assert day.exposure_s[:2] == (3600.0, 1800.0) and day.exposure_s[2:] == (0.0,) * 22
    assert day.hourly_rps[:2] == (2 / 3600, 1 / 1800) and day.hourly_rps[2:] == (None,) * 22


def _azure_day(path: Path) -> None:
    """From 2023-11-16 18:30 to 2023-11-18 06:30 (1.5 days): a short request every 60 s, and 36 long ones in
    2023-11-17 12:00-13:00, the only 12 o'clock hour of the span."""
    t0 = datetime(2023, 11, 16, 18, 30)
    rows = [(t0 + timedelta(seconds=60 * i), 100, 10) for i in range(36 * 60 + 1)]
    noon = datetime(2023, 11, 17, 12, 0)
    rows += [(noon + timedelta(seconds=100 * i + 30), 8000, 800) for i in range(36)]
    rows.sort()
    text = "".join(f"{t:%Y-%m-%d %H:%M:%S}.0000000,{i},{o}\n" for t, i, o in rows)
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + text)


def test_clock_hours_per_class_and_the_rate_profile(tmp_path: Path, run_cli: Run) -> None:
    """Exposure: one whole day (3600 s per hour) plus 18:30-06:30: 1800 s of hour 18 and of hour 6, 3600 s of
    19..5. Short class: 60 arrivals per observed hour, so 1/60 req/s everywhere, except hour 6, which also holds
    the last arrival at 06:30:00 (60 + 31 in 5400 s). Long class: 36 in hour 12's 3600 s, 0.01 req/s."""
    trace, out = tmp_path / "day.csv", tmp_path / "w.yaml"
    _azure_day(trace)
    code, text, err = run_cli(
        "profile", str(trace), "--classes", "2", "--model", "llama-3.1-8b",
        "--ttft-p99-ms", "5000", "--tpot-p99-ms", "100", "-o", str(out), "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert "rate_profile" not in err
    d = json.loads(text)["data"]
    day = d["hour_of_day"]
    assert (day["origin"], day["first_hour"], day["complete"], day["span_days"]) == ("clock", 18, True, 1.5)
    exposure = [3600.0] * 24
    for h in [*range(19, 24), *range(6)]:
        exposure[h] = 7200.0
    exposure[18] = exposure[6] = 5400.0
    assert day["exposure_s"] == exposure
    short, long = d["classes"]
    assert (short["num_requests"], long["num_requests"]) == (2161, 36)
    expected_short = [1 / 60] * 24
    expected_short[6] = 91 / 5400
    assert short["hour_of_day_rps"] == pytest.approx(expected_short, rel=1e-12)
    assert long["hour_of_day_rps"] == pytest.approx([0.01 if h == 12 else 0.0 for h in range(24)], rel=1e-12)
    spec = api.load_workload_spec(out)
    c1, c2 = spec.classes
    assert c1.rate_profile is not None and c2.rate_profile is not None
    assert c1.rate_profile.hourly_rps == [0.0166667] * 6 + [0.0168519] + [0.0166667] * 17  # 91/5400 = 0.01685185
    assert c2.rate_profile.hourly_rps == [0.01 if h == 12 else 0.0 for h in range(24)]
    assert c1.prefix_cache is None  # an Azure trace has no hash_ids
    code, text, err = run_cli("size", str(out), "--format", "json")
    assert code == 0, err


def test_table_shows_reuse_and_the_day(mooncake: Path, tmp_path: Path, run_cli: Run) -> None:
    code, out, err = run_cli("profile", str(mooncake), "--classes", "2")
    assert code == 0, err
    assert "65.2% of prompt tokens (63.4% of blocks); working set 5,074 tokens" in out  # 12729/19520, 26/41
    assert "prefix hit" in out and "71.0%" in out and "63.5%" in out  # c1 3122/4400, c2 9607/15120
    assert "hour of day" not in out  # 6 s: no day to draw
    trace = tmp_path / "day.csv"
    _azure_day(trace)
    code, out, err = run_cli("profile", str(trace))
    assert code == 0, err
    assert "hour of day from 00:00 (req/s, mean over 1.5 days, max 0.02667)" in out  # hour 12: 96/3600
