"""Trace files: each public format round-trips synth → file → reader; detection; bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from conftest import Run, assert_input_error

from planner.errors import InputError
from planner.io.traces import WRITE_FORMATS, format_timestamps, read_trace, write_trace
from planner.profile.analysis import Trace
from planner.sim.synth import SynthSpec, synthesize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "traces"
READ_AS = {"azure": "azure", "azure-2024": "azure", "burstgpt": "burstgpt", "mooncake": "mooncake", "vidur": "vidur"}
READ_AS |= {"csv": "csv", "jsonl": "jsonl"}
TIME_TOL = {"mooncake": 1e-3}  # milliseconds on disk; the others keep microseconds or better


@pytest.fixture(scope="module")
def synth_trace() -> Trace:
    return synthesize(SynthSpec(requests=3000, rate_rps=20, cv2=2.0, seed=11, fail_frac=0.05))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip(tmp_path: Path, synth_trace: Trace, fmt: str, gz: bool) -> None:
    path = tmp_path / f"t.{fmt}{'.gz' if gz else ''}"
    write_trace(path, synth_trace, fmt)
    if gz:
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    tf = read_trace(path)  # auto-detected, gzip by content
    assert tf.format == READ_AS[fmt]
    assert tf.compressed is gz
    assert tf.rows == len(synth_trace)
    src = synth_trace
    if fmt == "burstgpt":  # failed requests (0 response tokens) are counted and left out
        ok = src.output_tokens > 0
        assert tf.trace.failed == int((~ok).sum()) > 0
        times, inp, out = src.arrival_s[ok], src.input_tokens[ok], src.output_tokens[ok]
        times = times - times[0]
    else:
        assert tf.trace.failed == 0
        times, inp, out = src.arrival_s, src.input_tokens, src.output_tokens
    np.testing.assert_array_equal(tf.trace.input_tokens, inp)
    np.testing.assert_array_equal(tf.trace.output_tokens, out)
    np.testing.assert_allclose(tf.trace.arrival_s, times, rtol=0, atol=TIME_TOL.get(fmt, 1e-6))
    if fmt in ("mooncake", "jsonl"):
        assert tf.trace.hash_values is not None and tf.trace.hash_offsets is not None
        np.testing.assert_array_equal(tf.trace.hash_values, src.hash_values)
        np.testing.assert_array_equal(tf.trace.hash_offsets, src.hash_offsets)
    if fmt.startswith("azure"):
        assert tf.trace.start is not None and tf.trace.start.startswith("2023-11-16" if fmt == "azure" else "2024-05-10")


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    spec = SynthSpec(requests=500, rate_rps=3, cv2=3, seed=5)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_trace(a, synthesize(spec), "mooncake")
    write_trace(b, synthesize(spec), "mooncake")
    assert a.read_bytes() == b.read_bytes()


def test_format_timestamps_by_hand() -> None:
    ns = np.array([np.datetime64("2023-11-16T18:15:46.6805900", "ns").astype(np.int64)])
    assert format_timestamps(ns, 7)[0] == b"2023-11-16 18:15:46.6805900"
    ns = np.array([np.datetime64("2024-02-29T00:00:01", "ns").astype(np.int64)])
    assert format_timestamps(ns, 0)[0] == b"2024-02-29 00:00:01"


def test_azure_2024_quirks(tmp_path: Path) -> None:
    """Zone offsets, and rows without the fractional part, in one file."""
    path = _write(
        tmp_path,
        "az24.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-05-10 00:00:00.009930+00:00,374,44\n"
        "2024-05-10 00:00:01+00:00,396,109\n"
        "2024-05-10 00:00:02.5+00:00,10,1\n",
    )
    tf = read_trace(path)
    assert tf.format == "azure"
    np.testing.assert_allclose(tf.trace.arrival_s, [0.0, 0.99007, 2.49007], atol=1e-9)
    assert tf.trace.start == "2024-05-10T00:00:00.009930000"


def test_azure_2023_seven_fraction_digits(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "az23.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n",
    )
    np.testing.assert_allclose(read_trace(path).trace.arrival_s, [0.0, 4.314579], atol=1e-9)


def test_burstgpt_columns_and_failures(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "b.csv",
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,472,18,490,Conversation log\n"
        "45,ChatGPT,1087,0,1087,Conversation log\n"
        "118,GPT-4,417,276,693,API log\n",
    )
    tf = read_trace(path)
    assert (tf.format, tf.rows, tf.trace.failed) == ("burstgpt", 3, 1)
    np.testing.assert_array_equal(tf.trace.arrival_s, [0.0, 113.0])
    np.testing.assert_array_equal(tf.trace.input_tokens, [472, 417])


def test_mooncake_milliseconds_and_hash_ids(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "m.jsonl",
        '{"timestamp": 0, "input_length": 1000, "output_length": 10, "hash_ids": [1, 2]}\n\n'
        '{"timestamp": 1500, "input_length": 600, "output_length": 5, "hash_ids": [1]}\n',
    )
    tf = read_trace(path)
    assert tf.format == "mooncake"
    np.testing.assert_array_equal(tf.trace.arrival_s, [0.0, 1.5])
    assert tf.trace.hash_values is not None and tf.trace.hash_offsets is not None
    assert tf.trace.hash_values.tolist() == [1, 2, 1] and tf.trace.hash_offsets.tolist() == [0, 2, 3]


def test_generic_columns_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "g.csv", "t_ms,prompt,completion,other\n100,5,6,x\n350,7,8,y\n")
    tf = read_trace(path, "auto", "time=t_ms,input=prompt,output=completion,time_unit=ms")
    assert tf.format == "csv"
    np.testing.assert_allclose(tf.trace.arrival_s, [0.0, 0.25])
    with pytest.raises(InputError, match="--columns"):
        read_trace(path, "auto", "time=t_ms,nonsense=1")


def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"arrived_at": [0.0, 2.0, 4.0], "num_prefill_tokens": [10, 20, 30], "num_decode_tokens": [1, 2, 3]}), path
    )
    tf = read_trace(path)
    assert (tf.format, tf.container) == ("vidur", "parquet")
    np.testing.assert_array_equal(tf.trace.input_tokens, [10, 20, 30])


def test_every_example_trace_profiles(run_cli: Run) -> None:
    files = sorted(p for p in EXAMPLES.iterdir() if p.name != "README.md")
    assert len(files) >= 7
    assert sum(p.stat().st_size for p in EXAMPLES.iterdir()) < 200_000
    for path in files:
        code, out, err = run_cli("profile", str(path), "--format", "json")
        assert code == 0, (path, err)
        assert '"num_requests"' in out


# --- bad input: one error line naming file and line, exit 2, no traceback -----------------------

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
OK = "2023-11-16 18:15:46.6805900,374,44\n"
BAD = [
    ("bad_token.csv", HEADER + OK + "2023-11-16 18:15:47.0,37x4,44\n", ":3: column 'ContextTokens'"),
    ("bad_time.csv", HEADER + OK + "2023-11-16 18:1x:47.0,374,44\n", ":3: column 'TIMESTAMP': bad timestamp"),
    ("short_row.csv", HEADER + OK + "2023-11-16 18:15:47.0,374\n", ":3: expected 3 fields"),
    ("negative.csv", HEADER + OK + "2023-11-16 18:15:47.0,-3,4\n", ":3: column 'ContextTokens': negative"),
    ("fraction.csv", HEADER + OK + "2023-11-16 18:15:47.0,3.5,4\n", ":3: column 'ContextTokens': token count is not a whole"),
    ("blank_then_missing.csv", HEADER + OK + "\n" + "2023-11-16 18:15:47.0,,4\n", ":4: column 'ContextTokens': missing value"),
    ("missing_col.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.0,374\n", ":1: missing column 'GeneratedTokens'"),
    ("header_only.csv", HEADER, ": empty trace"),
    ("empty.csv", "", ": empty trace"),
    ("one_row.csv", HEADER + OK, ": 1 request(s)"),
    (
        "ambiguous.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens,arrived_at,num_prefill_tokens,num_decode_tokens\n",
        ":1: ambiguous",
    ),
    ("unknown.csv", "a,b,c\n1,2,3\n", ":1: cannot tell the trace format"),
    ("mixed_zone.csv", HEADER + "2024-05-10 00:00:00.1+00:00,1,1\n2024-05-10 00:00:01,1,1\n", ":3: column 'TIMESTAMP'"),
    ("bad_json.jsonl", '{"timestamp": 1, "input_length": 3, "output_length": 4}\n{"timestamp": 2,\n', ":2:"),
    (
        "bad_json_time.jsonl",
        '{"timestamp": 1, "input_length": 3, "output_length": 4}\n{"timestamp": "x", "input_length": 3, "output_length": 4}\n',
        ":2: field 'timestamp'",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_input(tmp_path: Path, run_cli: Run, name: str, text: str, expected: str) -> None:
    path = _write(tmp_path, name, text)
    lines = assert_input_error(run_cli("profile", str(path)))
    assert lines[0].startswith(f"error: {path}") and expected in lines[0], lines


def test_bad_gzip_line_is_named(tmp_path: Path, run_cli: Run) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress((HEADER + OK + OK + "2023-11-16 18:15:48.0,x,1\n").encode()))
    assert_input_error(run_cli("profile", str(path)), f"error: {path}:4: column 'ContextTokens'")


def test_format_mismatch_and_missing_file(tmp_path: Path, run_cli: Run) -> None:
    path = _write(tmp_path, "a.csv", HEADER + OK)
    assert_input_error(run_cli("profile", str(path), "--trace-format", "mooncake"), "expects JSONL")
    assert_input_error(run_cli("profile", str(tmp_path / "nope.csv")), "no such file")


def test_synth_bad_flags_write_nothing(tmp_path: Path, run_cli: Run) -> None:
    out = tmp_path / "t.csv"
    for args in (("--cv2", "0"), ("--format-out", "xml"), ("--requests", "0")):
        assert_input_error(run_cli("trace", "synth", "-o", str(out), *args))
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_progress_reaches_the_file_size(tmp_path: Path, synth_trace: Trace) -> None:
    path = tmp_path / "t.csv.gz"
    write_trace(path, synth_trace, "azure")
    calls: list[tuple[int, int]] = []
    read_trace(path, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (path.stat().st_size, path.stat().st_size)
