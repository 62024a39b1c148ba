"""Property-based fuzzing of the remaining inputs: proposals (hand-written and plan documents),
traces in every format (mutated cells, rows, timestamps, gzip), measurement CSVs and CLI flags.

Every property has one rule: the outcome is a correct result or one :class:`PlannerError` whose
single-line message names the file at fault (CLI: exit 0-3, one ``error:`` line, no traceback).
The ``check_*`` functions return ``"loaded"`` or ``"rejected"`` and raise anything else; bench/fuzz.py
runs them with many more examples and counts the outcomes."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_inputs import _mutate, _paths

from planner.domain import Catalog
from planner.errors import PlannerError

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

# --- shared pieces ---------------------------------------------------------------------------

NUMBER_TOKENS = [
    "nan", "NaN", "inf", "-inf", "Infinity", "-1", "0", "-0", "1e308", "1e309", "-1e309", "1e-320",
    "99999999999999999999999", "0.5", "1.5", "", " ", "abc", "0x10", "1_000", "+5", "1e3", "3",
]  # fmt: skip
SPECIAL_NUMBERS = [math.nan, math.inf, -math.inf, -1, 0, -0.0, 1e308, 10**30, -(10**30), 0.5, 1e-320]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.sampled_from(SPECIAL_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
CELLS = st.one_of(st.sampled_from(NUMBER_TOKENS), st.text(max_size=10))


class Crash(AssertionError):
    """An outcome that is neither a result nor a clean error."""


def expect_clean(fn: Callable[[], Any], names: tuple[str, ...]) -> str:
    """Run ``fn``: "loaded", or "rejected" for one single-line PlannerError naming one of ``names``."""
    try:
        fn()
    except PlannerError as exc:
        if "\n" in exc.message:
            raise Crash(f"multi-line error: {exc.message!r}") from None
        if not any(n in exc.message for n in names):
            raise Crash(f"error does not name the file: {exc.message!r}") from None
        return "rejected"
    return "loaded"


def _catalog() -> Catalog:
    from planner.io.catalog import load_catalog

    global _CATALOG
    if _CATALOG is None:
        _CATALOG = load_catalog()
    return _CATALOG


_CATALOG: Catalog | None = None


# --- proposals -------------------------------------------------------------------------------

_WORKLOAD = yaml.safe_load((EXAMPLES / "workloads" / "chatbot.yaml").read_text())
_PROPOSAL = yaml.safe_load((EXAMPLES / "proposals" / "chatbot.yaml").read_text())
PROPOSAL_BASES: dict[str, Any] = {
    "inline": {**_PROPOSAL, "workload": _WORKLOAD},
    "path": {**_PROPOSAL, "workload": str(EXAMPLES / "workloads" / "chatbot.yaml")},
    "plan": yaml.safe_load((EXAMPLES / "proposals" / "chatbot_plan.yaml").read_text()),
}
PROPOSAL_PATHS = [(name, p) for name, doc in PROPOSAL_BASES.items() for p in _paths(doc)]


@dataclass(frozen=True)
class ProposalCase:
    base: str
    path: tuple[Any, ...]
    value: Any
    delete: bool


PROPOSAL_CASES = st.builds(
    lambda bp, value, delete: ProposalCase(bp[0], bp[1], value, delete),
    st.sampled_from(PROPOSAL_PATHS),
    VALUES,
    st.booleans(),
)


def check_proposal(case: ProposalCase) -> str:
    from planner.api import load_proposal

    doc = _mutate(PROPOSAL_BASES[case.base], case.path, case.value, case.delete)
    try:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    except (ValueError, yaml.YAMLError):
        return "loaded"  # a value PyYAML cannot write: not an input a user can give
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "proposal.yaml"
        path.write_text(text, encoding="utf-8")
        names = [tmp]
        for wl in (doc.get("workload") if isinstance(doc, dict) else None,):
            if isinstance(wl, str):
                names.append(wl)
        return expect_clean(lambda: load_proposal(path, _catalog()), tuple(names))


@pytest.mark.slow
@settings(max_examples=120, deadline=None)
@given(case=PROPOSAL_CASES)
def test_mutated_proposals_load_or_fail_cleanly(case: ProposalCase) -> None:
    check_proposal(case)


# --- traces ----------------------------------------------------------------------------------


def _head(name: str, lines: int = 8) -> str:
    path = EXAMPLES / "traces" / name
    data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    return "".join(data.decode().splitlines(keepends=True)[:lines])


TRACE_BASES: dict[str, tuple[str, str]] = {  # name: (native format, text)
    "azure": ("azure", _head("azure_code_2023.csv")),
    "azure-2024": ("azure", _head("azure_conv_2024.csv")),
    "burstgpt": ("burstgpt", _head("burstgpt.csv")),
    "vidur": ("vidur", _head("vidur.csv")),
    "csv": ("csv", _head("generic.csv")),
    "jsonl": ("jsonl", _head("generic.jsonl.gz")),
    "mooncake": ("mooncake", _head("mooncake.jsonl")),
}
READ_FORMATS = ("auto", "azure", "burstgpt", "mooncake", "vidur", "csv", "jsonl")

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_NUMBERS),
    st.text(max_size=10),
    st.lists(st.integers(min_value=-(2**65), max_value=2**65), max_size=3),
    st.sampled_from(["2024-05-10 00:00:00", "2024-05-10T00:00:01Z", "2024-13-40 99:00:00", "1e3"]),
)
TEXT_MUTATIONS = st.one_of(
    st.tuples(st.just("cell"), st.integers(0, 20), st.integers(0, 8), CELLS),
    st.tuples(st.just("field"), st.integers(0, 20), st.text(max_size=12), JSON_VALUES),
    st.tuples(st.just("drop_cell"), st.integers(0, 20), st.integers(0, 8)),
    st.tuples(st.just("add_cell"), st.integers(0, 20), CELLS),
    st.tuples(st.just("del_line"), st.integers(0, 20)),
    st.tuples(st.just("dup_line"), st.integers(0, 20)),
    st.tuples(st.just("insert_line"), st.integers(0, 20), st.text(max_size=30)),
    st.tuples(st.just("truncate"), st.integers(0, 400)),
    st.tuples(st.just("shuffle"), st.integers(0, 2**32)),
)
BYTE_LAYERS = st.one_of(
    st.tuples(st.just("plain")),
    st.tuples(st.just("gzip")),
    st.tuples(st.just("gzip_truncated"), st.integers(0, 200)),
    st.tuples(st.just("gzip_flip"), st.integers(0, 200), st.integers(1, 255)),
    st.tuples(st.just("bytes"), st.integers(0, 400), st.binary(min_size=1, max_size=8)),
)


@dataclass(frozen=True)
class TraceCase:
    base: str
    mutations: tuple[Any, ...]
    layer: tuple[Any, ...]
    read_format: str


TRACE_CASES = st.builds(
    TraceCase,
    st.sampled_from(sorted(TRACE_BASES)),
    st.lists(TEXT_MUTATIONS, min_size=0, max_size=3).map(tuple),
    BYTE_LAYERS,
    st.sampled_from(["auto", "auto", "native", *READ_FORMATS]),
)


def _csv_line(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _apply(text: str, mutation: tuple[Any, ...]) -> str:
    lines = text.splitlines(keepends=True)
    kind = mutation[0]
    i = mutation[1] % max(len(lines), 1) if kind not in ("truncate", "shuffle") else 0
    if kind == "truncate":
        return text[: mutation[1]]
    if kind == "shuffle":
        body = lines[1:]
        random.Random(mutation[1]).shuffle(body)
        return "".join(lines[:1] + body)
    if not lines:
        return text
    line = lines[i]
    if kind in ("cell", "drop_cell", "add_cell"):
        if line.lstrip().startswith("{"):
            return text
        cells = next(csv.reader([line.rstrip("\n")]), [])
        if kind == "cell" and cells:
            cells[mutation[2] % len(cells)] = mutation[3]
        elif kind == "drop_cell" and cells:
            del cells[mutation[2] % len(cells)]
        elif kind == "add_cell":
            cells.append(mutation[2])
        lines[i] = _csv_line(cells)
    elif kind == "field":
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return text
        if not isinstance(record, dict):
            return text
        keys = sorted(record)
        key = mutation[2] if not keys or len(mutation[2]) > 6 else keys[len(mutation[2]) % len(keys)]
        record[key] = mutation[3]
        lines[i] = json.dumps(record) + "\n"
    elif kind == "del_line":
        del lines[i]
    elif kind == "dup_line":
        lines.insert(i, line)
    elif kind == "insert_line":
        lines.insert(i, mutation[2] + "\n")
    return "".join(lines)


def trace_bytes(case: TraceCase) -> bytes:
    text = TRACE_BASES[case.base][1]
    for m in case.mutations:
        text = _apply(text, m)
    data = text.encode("utf-8", "surrogatepass")
    layer = case.layer
    if layer[0] == "gzip":
        return gzip.compress(data, mtime=0)
    if layer[0] == "gzip_truncated":
        z = gzip.compress(data, mtime=0)
        return z[: layer[1] % max(len(z), 1)]
    if layer[0] == "gzip_flip":
        flipped = bytearray(gzip.compress(data, mtime=0))
        flipped[layer[1] % len(flipped)] ^= layer[2]
        return bytes(flipped)
    if layer[0] == "bytes":
        at = layer[1] % (len(data) + 1)
        extra: bytes = layer[2]
        return data[:at] + extra + data[at:]
    return data


def check_trace(case: TraceCase) -> str:
    from planner.io.traces import read_trace

    fmt = TRACE_BASES[case.base][0] if case.read_format == "native" else case.read_format
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.data"
        path.write_bytes(trace_bytes(case))
        result: list[Any] = []
        outcome = expect_clean(lambda: result.append(read_trace(path, fmt)), (str(path),))
    if outcome == "loaded":
        tr = result[0].trace
        n = tr.arrival_s.size
        if not (n == tr.input_tokens.size == tr.output_tokens.size and n > 0):
            raise Crash(f"inconsistent trace arrays ({n}, {tr.input_tokens.size}, {tr.output_tokens.size})")
        if not (np.all(np.isfinite(tr.arrival_s)) and np.all(tr.arrival_s >= 0)):
            raise Crash(f"bad arrival times {tr.arrival_s!r}")
        if np.any(tr.input_tokens < 0) or np.any(tr.output_tokens < 0):
            raise Crash("negative token counts loaded")
    return outcome


@settings(max_examples=150, deadline=None)
@given(case=TRACE_CASES)
def test_mutated_traces_load_or_fail_cleanly(case: TraceCase) -> None:
    check_trace(case)


@pytest.mark.parametrize("base", sorted(TRACE_BASES))
def test_unmutated_trace_bases_load(base: str) -> None:
    for layer in (("plain",), ("gzip",)):
        assert check_trace(TraceCase(base, (), layer, "auto" if base != "azure-2024" else "azure")) == "loaded"


# --- measurement CSVs ------------------------------------------------------------------------

_MEAS_LINES = (REPO / "catalogs" / "measurements" / "h100-torch" / "measurements.csv").read_text().splitlines(True)
MEASUREMENT_BASES: dict[str, str] = {
    "planner": "".join(_MEAS_LINES[:2] + [ln for ln in _MEAS_LINES[2:] if not ln.startswith("#")][:6]),
    "splitwise": "".join((REPO / "catalogs" / "measurements" / "splitwise" / "perf_model.csv").read_text().splitlines(True)[:7]),
}


@dataclass(frozen=True)
class MeasurementCase:
    base: str
    mutations: tuple[Any, ...]
    layer: tuple[Any, ...]


MEASUREMENT_CASES = st.builds(
    MeasurementCase,
    st.sampled_from(sorted(MEASUREMENT_BASES)),
    st.lists(TEXT_MUTATIONS.filter(lambda m: m[0] != "field"), min_size=1, max_size=3).map(tuple),
    st.one_of(st.tuples(st.just("plain")), st.tuples(st.just("bytes"), st.integers(0, 400), st.binary(min_size=1, max_size=4))),
)


def check_measurements(case: MeasurementCase) -> str:
    from planner.io.measurements import read_measurements, read_splitwise

    text = MEASUREMENT_BASES[case.base]
    for m in case.mutations:
        text = _apply(text, m)
    data = text.encode("utf-8", "surrogatepass")
    if case.layer[0] == "bytes":
        at = case.layer[1] % (len(data) + 1)
        data = data[:at] + case.layer[2] + data[at:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "measurements.csv"
        path.write_bytes(data)
        result: list[Any] = []
        reader = read_measurements if case.base == "planner" else (lambda p: read_splitwise(p)[0])
        outcome = expect_clean(lambda: result.append(reader(path)), (str(path),))
    for m in result[0] if result else ():
        if not (m.tp >= 1 and m.batch >= 1 and m.tokens >= 0 and m.context_tokens >= 0):
            raise Crash(f"out-of-range measurement loaded: {m!r}")
        if not (math.isfinite(m.latency_s) and m.latency_s > 0 and math.isfinite(m.context_tokens)):
            raise Crash(f"non-finite measurement loaded: {m!r}")
    return outcome


@settings(max_examples=120, deadline=None)
@given(case=MEASUREMENT_CASES)
def test_mutated_measurements_load_or_fail_cleanly(case: MeasurementCase) -> None:
    check_measurements(case)


# --- CLI flags -------------------------------------------------------------------------------

PLAUSIBLE = st.sampled_from(["1", "2", "4", "8", "0.1", "0.5", "60", "100", "1000", "2000"])
FLAG_VALUES = st.one_of(  # plausible values half the time, so that runs get past the first flag
    PLAUSIBLE, PLAUSIBLE, st.sampled_from(NUMBER_TOKENS), st.text(max_size=8).filter(lambda s: not s.startswith("-"))
)
SMALL_COUNTS = st.sampled_from(["0", "-1", "1", "7", "50", "abc", "nan", "1.5", "", "99999999999999999999999"])
CHATBOT_PROPOSAL = str(EXAMPLES / "proposals" / "chatbot.yaml")
GENERIC_TRACE = str(EXAMPLES / "traces" / "generic.csv")


def _opts(pairs: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[list[str]]:
    """Each option present or not, with a fuzzed value."""

    def pair(key: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str] | None]:
        return st.one_of(st.none(), values.map(lambda x: [key, x]))

    items = [pair(k, v) for k, v in pairs.items()]
    return st.tuples(*items).map(lambda xs: [a for x in xs if x for a in x])


MODELS = st.sampled_from(["llama-3.1-70b", "llama-3.1-8b", "LLAMA-3.1-70B", "no-such-model", ""])
GPUS = st.sampled_from(["h100-sxm", "a100-sxm-80gb", "nope"])
PRECISIONS = st.sampled_from(["bf16", "fp8", "BF16", "int3"])


def flag_cases() -> st.SearchStrategy[list[str]]:
    """argv of every fuzzed command (the crashes the first long run found are fixed: KNOWN_CRASHES below)."""
    return st.one_of(
    _opts({"--model": MODELS, "--gpu": GPUS, "--tp": FLAG_VALUES, "--tokens": FLAG_VALUES, "--batch": FLAG_VALUES,
           "--precision": PRECISIONS}).map(lambda a: ["estimate", "prefill", *a, "-f", "json"]),
    _opts({"--model": MODELS, "--gpu": GPUS, "--tp": FLAG_VALUES, "--batch": FLAG_VALUES, "--context": FLAG_VALUES,
           "--precision": PRECISIONS}).map(lambda a: ["estimate", "decode", *a, "-f", "json"]),
    _opts({"--rate-rps": FLAG_VALUES, "--isl": FLAG_VALUES, "--osl": FLAG_VALUES, "--ttft-p99-ms": FLAG_VALUES,
           "--tpot-p99-ms": FLAG_VALUES, "--interarrival-cv2": FLAG_VALUES, "--precision": PRECISIONS,
           "--time-limit-s": FLAG_VALUES}).map(lambda a: ["size", "--model", "llama-3.1-8b", *a, "-f", "json"]),
    _opts({"--window-s": FLAG_VALUES, "--classes": st.one_of(FLAG_VALUES, st.just("auto")), "--model": MODELS,
           "--tp": FLAG_VALUES, "--ttft-p99-ms": FLAG_VALUES, "--tpot-p99-ms": FLAG_VALUES,
           "--columns": st.sampled_from(["time=timestamp,input=input_tokens,output=output_tokens,time_unit=ms",
                                         "time=x", "bogus", "time=timestamp,input=input_tokens,output=nope"]),
           "--trace-format": st.sampled_from([*READ_FORMATS, "parquet", "x"])}).map(
        lambda a: ["profile", GENERIC_TRACE, *a, "-f", "json"]),
    _opts({"-n": SMALL_COUNTS, "--rate-rps": FLAG_VALUES, "--cv2": FLAG_VALUES, "--isl-mean": FLAG_VALUES,
           "--isl-sigma": FLAG_VALUES, "--isl-max": SMALL_COUNTS, "--osl-mean": FLAG_VALUES, "--osl-max": SMALL_COUNTS,
           "--prefix-share": FLAG_VALUES, "--fail-frac": FLAG_VALUES, "--seed": SMALL_COUNTS,
           "--format-out": st.sampled_from(["azure", "azure-2024", "burstgpt", "mooncake", "vidur", "csv", "jsonl", "x"])}).map(
        lambda a: ["trace", "synth", "-o", "{tmp}/out.csv", *a]),
    _opts({"-n": SMALL_COUNTS, "--seed": SMALL_COUNTS, "--warmup-frac": FLAG_VALUES, "--time-cap-s": FLAG_VALUES,
           "--queue-cap": SMALL_COUNTS, "--routing": st.sampled_from(["jsq", "rr", "central", "x"]),
           "--prefill-token-budget": SMALL_COUNTS, "--out-of-service": SMALL_COUNTS}).map(
        lambda a: ["simulate", CHATBOT_PROPOSAL, "-n", "40", *a, "-f", "json"]),
    _opts({"--fail-on": st.sampled_from(["error", "warning", "WARNING", "info", ""]),
           "--skip": st.sampled_from(["EFF001", "eff001,SLO001", "", "nope"]),
           "--format": st.sampled_from(["json", "github", "markdown", "csv", "x"])}).map(
        lambda a: ["check", CHATBOT_PROPOSAL, "--skip", "EFF001", *a]),
    )  # fmt: skip


FLAG_CASES = flag_cases()


def check_flags(argv: list[str], run: Callable[[list[str]], tuple[int, str, str]]) -> str:
    """``run`` gives (exit code, stdout, stderr); the code is 0-3 with no traceback, and a failure
    says so in exactly one ``error:`` line."""
    with tempfile.TemporaryDirectory() as tmp:
        code, _out, err = run([a.replace("{tmp}", tmp) for a in argv])
    if "Traceback" in err or "internal error" in err:
        raise Crash(f"exit {code}: {err.strip()[-500:]}")
    if code not in (0, 1, 2, 3):
        raise Crash(f"exit {code}: {err.strip()[-500:]}")
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    if code in (2, 3) and len(errors) != 1:
        raise Crash(f"exit {code} with {len(errors)} error lines: {err!r}")
    return "loaded" if code in (0, 1) else "rejected"


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=FLAG_CASES)
def test_fuzzed_cli_flags_exit_cleanly(argv: list[str], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    check_flags(argv, lambda a: run_cli(*a))


KNOWN_CRASHES = {
    "simulate-negative-seed": ["simulate", CHATBOT_PROPOSAL, "-n", "40", "--seed", "-1"],
    "synth-negative-seed": ["trace", "synth", "-o", "{tmp}/t.csv", "-n", "5", "--seed", "-1"],
    "synth-absurd-requests": ["trace", "synth", "-o", "{tmp}/t.csv", "-n", "99999999999999999999999"],
    "synth-rate-underflow": ["trace", "synth", "-o", "{tmp}/t.csv", "-n", "5", "--rate-rps", "1e-320", "--cv2", "1e308"],
}


@pytest.mark.parametrize("name", sorted(KNOWN_CRASHES))
def test_known_crash_is_a_clean_error(name: str, run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    code, _, err = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in KNOWN_CRASHES[name]])
    assert code == 2 and "internal error" not in err


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60))
def test_any_yaml_text_parses_or_fails_in_one_line(text: str) -> None:
    from planner.io.yamlio import loads

    expect_clean(lambda: loads(text, "fuzz.yaml"), ("fuzz.yaml",))


def test_a_control_character_names_its_line() -> None:
    from planner.io.yamlio import loads

    with pytest.raises(PlannerError) as info:
        loads("a: 1\nb: \x1b\n", "w.yaml")
    assert info.value.message == "w.yaml:2: invalid YAML: control character U+001B is not allowed"
