"""Property-based fuzzing of the engines' benchmark files (planner/io/engine_bench.py): SGLang
``bench_one_batch`` JSON Lines and vLLM ``bench latency`` JSON (plain and ``.pytorch.json``).

Each case starts from a fixture in tests/data/engine_bench/, mutates its JSON tree (delete,
duplicate or reorder keys and elements, replace values by other JSON types, raw number tokens
such as NaN, Infinity, 1e309 or 5,000-digit integers, strings where numbers belong, deep nesting,
a list where an object belongs) and then its text (truncate at any byte, non-UTF-8 bytes, a BOM,
blank and very long lines, CRLF, a blank file). The rule: the reader returns in-range rows or
raises one single-line :class:`InputError` that names the file; anything else is a crash.
bench/fuzz.py (type ``engine``) runs :func:`check_engine` with many more examples."""

from __future__ import annotations

import json
import math
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_more import VALUES, Crash

from planner.errors import InputError, PlannerError
from planner.io.engine_bench import read_sglang_one_batch, read_vllm_latency

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "engine_bench"
MEASUREMENTS_CSV = REPO / "catalogs" / "measurements" / "h100-torch" / "measurements.csv"
RUN = {"model": "llama-3.1-8b", "gpu": "h100-sxm", "precision": "bf16"}
MAX_MESSAGE = 600  # characters of an error message beyond the file's name: one readable line

BASES: dict[str, tuple[str, str]] = {  # name: (reader, file name)
    "sglang": ("sglang", "sglang_bench_one_batch.jsonl"),
    "vllm": ("vllm", "vllm_latency.json"),
    "vllm-pt": ("vllm", "vllm_latency.pytorch.json"),
}
BASE_TEXT = {name: (DATA / file).read_text(encoding="utf-8") for name, (_, file) in BASES.items()}


# --- a JSON tree that keeps duplicate keys and raw tokens --------------------------------------


class Obj(list):  # type: ignore[type-arg]
    """A JSON object as its [key, value] pairs, so that a key can appear twice."""


class Raw(str):
    """The name of a RAW_TOKENS entry: JSON text written as is (NaN, 1e309, a 5,000-digit
    integer, deep nesting, ...)."""

    __slots__ = ()


def _parse(text: str) -> Any:
    return json.loads(text, object_pairs_hook=lambda pairs: Obj([list(p) for p in pairs]))


def _dump(node: Any) -> str:
    if isinstance(node, Raw):
        return RAW_TOKENS[node]
    if isinstance(node, Obj):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_dump(v)}" for k, v in node) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(_dump(v) for v in node) + "]"
    # raw non-ASCII text (U+2028 and all); NaN and inf come out as NaN and Infinity, as Python writes them
    return json.dumps(node, ensure_ascii=False)


def _slots(node: Any, out: list[tuple[Any, int]] | None = None) -> list[tuple[Any, int]]:
    """Every (container, index) of the tree: a pair of an Obj or an element of a list."""
    out = [] if out is None else out
    if isinstance(node, Obj):
        for i, pair in enumerate(node):
            out.append((node, i))
            _slots(pair[1], out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((node, i))
            _slots(v, out)
    return out


def _get(slot: tuple[Any, int]) -> Any:
    container, i = slot
    return container[i][1] if isinstance(container, Obj) else container[i]


def _put(slot: tuple[Any, int], value: Any) -> None:
    container, i = slot
    if isinstance(container, Obj):
        container[i][1] = value
    else:
        container[i] = value


SHORT_TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1e-400", "0", "-0", "0.0", "-1", "1", "1.0", "1.5",
    "1e3", "2e0", "9007199254740993", "1e16", "1e-320", '"8"', '"0.02"', '""', '"NaN"', "true", "false",
    "null", "[]", "{}", "[0.02]", '{"a": 1}', '"\\ud800"', '"\\u0000"', "0x10", "01", "+1", ".5", "1.",
    "nan", "inf",
]  # fmt: skip
RAW_TOKENS: dict[str, str] = {  # a short name (what a failing case shows): the JSON text
    **{t: t for t in SHORT_TOKENS},
    "<400 digits>": "1" * 400,
    "<-400 digits>": "-" + "9" * 400,
    "<5000 digits>": "1" * 5000,
    "<5000-digit fraction>": "0." + "0" * 5000 + "1",
    "<1e-5000 as 5000 digits>": "1" + "0" * 5000 + "e-5000",
    "<50 nested lists>": "[" * 50 + "]" * 50,
    "<950 nested lists>": "[" * 950 + "]" * 950,  # about the recursion limit, less the caller's frames
    "<950 nested objects>": '{"a": ' * 950 + "1" + "}" * 950,
    "<100000 nested lists>": "[" * 100_000 + "]" * 100_000,
    "<5000 nested objects>": '{"a": ' * 5000 + "1" + "}" * 5000,
    "<100000-char string>": '"' + "x" * 100_000 + '"',
    "<U+2028 in a string>": '"a\u2028b"',  # JSON allows it raw; str.splitlines() splits there
}
LEAVES = st.one_of(VALUES, st.sampled_from(sorted(RAW_TOKENS)).map(Raw))

TREE_MUTATIONS = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 200), LEAVES),
    st.tuples(st.just("delete"), st.integers(0, 200)),
    st.tuples(st.just("dup"), st.integers(0, 200), LEAVES),  # the key (or element) twice, the second with this value
    st.tuples(st.just("reorder"), st.integers(0, 200), st.integers(0, 2**32)),
    st.tuples(st.just("wrap"), st.integers(0, 200), st.sampled_from(["list", "object"])),  # v -> [v] or {"x": v}
    st.tuples(st.just("wrap_top"), st.sampled_from(["list", "object"])),
)
TEXT_MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 3000)),
    st.tuples(st.just("bytes"), st.integers(0, 3000), st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("bom")),
    st.tuples(st.just("crlf")),
    st.tuples(st.just("blank_line"), st.integers(0, 20), st.sampled_from(["", " ", "\t", "\r", "  \r", "\f", "\v"])),
    st.tuples(st.just("del_line"), st.integers(0, 20)),
    st.tuples(st.just("dup_line"), st.integers(0, 20)),
    st.tuples(st.just("shuffle_lines"), st.integers(0, 2**32)),
    st.tuples(st.just("insert_line"), st.integers(0, 20), st.text(max_size=30)),
    st.tuples(st.just("long_line"), st.integers(0, 20), st.sampled_from([" ", "x", "{", "["])),
    st.tuples(st.just("blank_file"), st.sampled_from(["", "\n", " \n\n", "\r\n", "\ufeff"])),
    st.tuples(st.just("replace"), st.text(max_size=40)),
)


def _mutate_tree(doc: Any, mutation: tuple[Any, ...]) -> Any:
    kind = mutation[0]
    if kind == "wrap_top":
        return [doc] if mutation[1] == "list" else Obj([["x", doc]])
    slots = _slots(doc)
    if not slots:
        return doc
    slot = slots[mutation[1] % len(slots)]
    container, i = slot
    if kind == "set":
        _put(slot, mutation[2])
    elif kind == "delete":
        del container[i]
    elif kind == "dup":
        copy = [container[i][0], mutation[2]] if isinstance(container, Obj) else mutation[2]
        container.insert(i + 1, copy)
    elif kind == "reorder":
        random.Random(mutation[2]).shuffle(container)
    elif kind == "wrap":
        value = _get(slot)
        _put(slot, [value] if mutation[2] == "list" else Obj([["x", value]]))
    return doc


def _mutate_text(data: bytes, mutation: tuple[Any, ...]) -> bytes:
    kind = mutation[0]
    if kind == "truncate":
        return data[: mutation[1] % (len(data) + 1)]
    if kind == "bytes":
        at = mutation[1] % (len(data) + 1)
        extra: bytes = mutation[2]
        return data[:at] + extra + data[at:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    if kind == "crlf":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if kind == "blank_file":
        return str(mutation[1]).encode()
    if kind == "replace":
        return str(mutation[1]).encode("utf-8", "surrogatepass")
    lines = data.split(b"\n")
    i = mutation[1] % len(lines) if kind != "shuffle_lines" else 0
    if kind == "blank_line":
        lines.insert(i, str(mutation[2]).encode())
    elif kind == "del_line":
        del lines[i]
    elif kind == "dup_line":
        lines.insert(i, lines[i])
    elif kind == "shuffle_lines":
        random.Random(mutation[1]).shuffle(lines)
    elif kind == "insert_line":
        lines.insert(i, str(mutation[2]).encode("utf-8", "surrogatepass"))
    elif kind == "long_line":
        lines.insert(i, str(mutation[2]).encode() * 200_000)
    return b"\n".join(lines)


@dataclass(frozen=True)
class EngineCase:
    base: str
    line: int  # SGLang: the line whose JSON the tree mutations change
    tree: tuple[Any, ...]
    text: tuple[Any, ...]
    tp: int
    shape: tuple[int | None, int | None, int | None]  # vLLM batch_size, input_len, output_len (None: not given)
    vllm_tp: bool  # vLLM: pass tp or not


SHAPES = st.tuples(
    st.one_of(st.none(), st.sampled_from([1, 8, 16])),
    st.one_of(st.none(), st.sampled_from([128, 1024])),
    st.one_of(st.none(), st.sampled_from([1, 128])),
)


def engine_cases(bases: list[str]) -> st.SearchStrategy[EngineCase]:
    return st.builds(
        EngineCase,
        st.sampled_from(bases),
        st.integers(0, 5),
        st.lists(TREE_MUTATIONS, max_size=3).map(tuple),
        st.lists(TEXT_MUTATIONS, max_size=2).map(tuple),
        st.sampled_from([1, 2, 8]),
        st.one_of(st.just((8, 1024, 128)), SHAPES),  # the fixture's shape often, so that runs load
        st.booleans(),
    )


ENGINE_CASES = engine_cases(sorted(BASES))


def engine_bytes(case: EngineCase) -> bytes:
    text = BASE_TEXT[case.base]
    if BASES[case.base][0] == "sglang":
        lines = text.split("\n")
        i = case.line % len(lines)
        if case.tree and lines[i].strip():
            lines[i] = _dump_tree(lines[i], case.tree)
        text = "\n".join(lines)
    elif case.tree:
        text = _dump_tree(text, case.tree)
    data = text.encode("utf-8", "surrogatepass")
    for m in case.text:
        data = _mutate_text(data, m)
    return data


def _dump_tree(text: str, mutations: tuple[Any, ...]) -> str:
    doc = _parse(text)
    for m in mutations:
        doc = _mutate_tree(doc, m)
    return _dump(doc)


def read_case(case: EngineCase, path: Path) -> list[Any]:
    reader, _ = BASES[case.base]
    if reader == "sglang":
        return read_sglang_one_batch(path, tp=case.tp, **RUN)  # type: ignore[arg-type]
    batch_size, input_len, output_len = case.shape
    return read_vllm_latency(
        path,
        tp=case.tp if case.vllm_tp else None,
        batch_size=batch_size,
        input_len=input_len,
        output_len=output_len,
        **RUN,  # type: ignore[arg-type]
    )


def expect_input_error(fn: Callable[[], Any], path: Path) -> str:
    """Run ``fn``: "loaded", or "rejected" for one short single-line InputError naming ``path``."""
    try:
        fn()
    except InputError as exc:
        if "\n" in exc.message or "\r" in exc.message:
            raise Crash(f"multi-line error: {exc.message[:300]!r}") from None
        if str(path) not in exc.message:
            raise Crash(f"error does not name the file: {exc.message[:300]!r}") from None
        if len(exc.message) > len(str(path)) + MAX_MESSAGE:
            raise Crash(f"error of {len(exc.message)} characters: {exc.message[:300]!r}") from None
        return "rejected"
    except PlannerError as exc:
        raise Crash(f"{type(exc).__name__}, not InputError: {exc.message[:300]!r}") from None
    return "loaded"


def _check_rows(rows: list[Any], path: Path, case: EngineCase) -> None:
    if not rows:
        raise Crash("no rows and no error")
    for m in rows:
        ok = (
            m.batch >= 1
            and m.tp >= 1
            and m.tokens >= (0 if m.phase == "decode" else 1)
            and math.isfinite(m.latency_s)
            and m.latency_s > 0
            and math.isfinite(m.context_tokens)
            and m.context_tokens >= 0
            and (m.output_tokens >= 1 if m.phase == "batch" else m.output_tokens == 0)
            and m.origin.startswith(str(path))
            and (m.model, m.gpu, m.precision) == (RUN["model"], RUN["gpu"], RUN["precision"])
        )
        if not ok:
            raise Crash(f"out-of-range row loaded: {m!r}")
        if BASES[case.base][0] == "sglang" and m.tp != case.tp:
            raise Crash(f"SGLang row with tp {m.tp}, not the given {case.tp}")


def check_engine(case: EngineCase) -> str:
    """Write the mutated file and read it: "loaded" (in-range rows) or "rejected" (a clean error)."""
    data = engine_bytes(case)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / BASES[case.base][1]
        path.write_bytes(data)
        result: list[list[Any]] = []
        outcome = expect_input_error(lambda: result.append(read_case(case, path)), path)
        if result:
            _check_rows(result[0], path, case)
    return outcome


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(case=engine_cases(["sglang"]))
def test_mutated_sglang_files_load_or_fail_cleanly(case: EngineCase) -> None:
    check_engine(case)


@settings(max_examples=300, deadline=None)
@given(case=engine_cases(["vllm", "vllm-pt"]))
def test_mutated_vllm_files_load_or_fail_cleanly(case: EngineCase) -> None:
    check_engine(case)


@pytest.mark.parametrize("base", sorted(BASES))
def test_unmutated_bases_load(base: str) -> None:
    """The harness itself: the fixtures round-trip through the tree and load."""
    assert _dump(_parse(BASE_TEXT[base].split("\n")[0] if base == "sglang" else BASE_TEXT[base])) is not None
    case = EngineCase(base, 0, (("reorder", 0, 1),) if base != "sglang" else (), (), 1, (8, 1024, 128), True)
    assert check_engine(case) == "loaded"


# --- end to end: planner calibrate fit --sglang/--vllm ... --format json ------------------------


def calibrate_argv(case: EngineCase, path: Path, with_csv: bool) -> list[str]:
    flag = "--sglang" if BASES[case.base][0] == "sglang" else "--vllm"
    argv = ["calibrate", "fit", *([str(MEASUREMENTS_CSV)] if with_csv else []), flag, str(path)]
    argv += ["--model", RUN["model"], "--gpu", RUN["gpu"], "--precision", RUN["precision"]]
    if flag == "--sglang" or case.vllm_tp:
        argv += ["--tp", str(case.tp)]
    if flag == "--vllm":
        for name, value in zip(("--batch-size", "--input-len", "--output-len"), case.shape, strict=True):
            argv += [name, str(value)] if value is not None else []
    return [*argv, "--folds", "0", "--format", "json"]


def check_calibrate_cli(case: EngineCase, with_csv: bool, run: Callable[[list[str]], tuple[int, str, str]]) -> str:
    """Exit 0 with a JSON document, or exit 2 with exactly one ``error:`` line and no traceback;
    when the reader itself rejects the file, that line names the file."""
    data = engine_bytes(case)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / BASES[case.base][1]
        path.write_bytes(data)
        try:
            read_case(case, path)
            reader_error = None
        except InputError as exc:
            reader_error = exc.message
        code, out, err = run(calibrate_argv(case, path, with_csv))
    if "Traceback" in err or "internal error" in err or code not in (0, 2):
        raise Crash(f"exit {code}: {err.strip()[-500:]}")
    if code == 0:
        json.loads(out)
        return "loaded"
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    if len(errors) != 1:
        raise Crash(f"exit {code} with {len(errors)} error lines: {err[:500]!r}")
    if reader_error is not None and errors[0] != f"error: {reader_error}":
        raise Crash(f"the CLI's error is not the reader's: {errors[0][:300]!r} vs {reader_error[:300]!r}")
    return "rejected"


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=ENGINE_CASES, with_csv=st.booleans())
def test_mutated_engine_files_through_calibrate_fit(
    case: EngineCase, with_csv: bool, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    check_calibrate_cli(case, with_csv, lambda argv: run_cli(*argv))


@pytest.mark.parametrize("base", sorted(BASES))
def test_calibrate_fit_takes_the_unmutated_bases(base: str, run_cli: Callable[..., tuple[int, str, str]]) -> None:
    case = EngineCase(base, 0, (), (), 1, (8, 1024, 128), True)
    assert check_calibrate_cli(case, True, lambda argv: run_cli(*argv)) == "loaded"


# --- regressions: crashes the fuzzing found, now clean errors ----------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


SGLANG_LINE = BASE_TEXT["sglang"].split("\n")[0]
VLLM_DOC = '{\n    "avg_latency": 0.5,\n    "latencies": [0.5, %s]\n}'


def _sglang_error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        read_sglang_one_batch(path, tp=1, **RUN)  # type: ignore[arg-type]
    return info.value.message


def _vllm_error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        read_vllm_latency(path, tp=1, batch_size=8, input_len=1024, output_len=128, **RUN)  # type: ignore[arg-type]
    return info.value.message


def test_deep_nesting_is_an_error_not_a_recursion_error(tmp_path: Path) -> None:
    """Was RecursionError out of json.loads (found as ('long_line', i, '[') and '<5000 nested objects>')."""
    deep = "[" * 100_000 + "]" * 100_000
    path = _write(tmp_path, "r.jsonl", f"{SGLANG_LINE}\n{SGLANG_LINE.replace('0.0213175', deep)}\n")
    assert _sglang_error(path) == f"{path}:2: JSON nested too deeply (arrays or objects inside each other)"
    path = _write(tmp_path, "l.json", VLLM_DOC % ('{"a": ' * 5000 + "1" + "}" * 5000))
    assert _vllm_error(path) == f"{path}: JSON nested too deeply (arrays or objects inside each other)"


def test_a_5000_digit_integer_is_an_error_not_a_value_error(tmp_path: Path) -> None:
    """Was ValueError (Python's 4,300-digit limit on int conversion) out of json.loads."""
    path = _write(tmp_path, "r.jsonl", f"{SGLANG_LINE}\n\n{SGLANG_LINE.replace('512', '1' * 5000, 1)}\n")
    assert _sglang_error(path) == f"{path}:3: an integer of 5000 digits (at most 4300)"
    path = _write(tmp_path, "l.json", VLLM_DOC % ("-" + "9" * 5000))
    assert _vllm_error(path) == f"{path}:3: an integer of 5000 digits (at most 4300)"


def test_a_400_digit_integer_is_out_of_range_not_an_overflow_error(tmp_path: Path) -> None:
    """Was OverflowError (int too large to convert to float) in _seconds and _count."""
    huge = "9" * 400
    path = _write(tmp_path, "r.jsonl", SGLANG_LINE.replace("0.0213175", huge))
    message = _sglang_error(path)
    assert message.startswith(f"{path}:1: field 'prefill_latency': 999"), message
    assert message.endswith("... is not a positive, finite time in seconds"), message
    path = _write(tmp_path, "r.jsonl", SGLANG_LINE.replace('"batch_size": 1', f'"batch_size": -{huge}'))
    message = _sglang_error(path)
    assert message.startswith(f"{path}:1: field 'batch_size': -999") and message.endswith("must be 1 or more (and below 2**53)")
    path = _write(tmp_path, "l.json", VLLM_DOC % huge)
    assert _vllm_error(path).startswith(f"{path}:3: field 'latencies[1]': 999")
    record = json.loads(BASE_TEXT["vllm-pt"])
    record[0]["benchmark"]["extra_info"]["args"]["max_num_seqs"] = 10**400
    path = _write(tmp_path, "l.pytorch.json", json.dumps(record))
    with pytest.raises(InputError) as info:
        read_vllm_latency(path, **RUN)  # type: ignore[arg-type]
    assert info.value.message.startswith(f"{path}:1: field '[0].benchmark.extra_info.args.max_num_seqs': 1000")


def test_a_huge_bad_value_is_cut_in_the_message(tmp_path: Path) -> None:
    """Was an error message of 100,000 characters (the whole bad string, as JSON)."""
    path = _write(tmp_path, "r.jsonl", SGLANG_LINE.replace('"batch_size": 1', '"batch_size": "' + "x" * 100_000 + '"'))
    message = _sglang_error(path)
    assert message == f"{path}:1: field 'batch_size': \"{'x' * 56}... is not a whole number"
    record = json.loads(BASE_TEXT["vllm-pt"])
    record[0]["benchmark"]["extra_info"]["args"]["n"] = "y" * 100_000
    path = _write(tmp_path, "l.pytorch.json", json.dumps(record))
    with pytest.raises(InputError) as info:
        read_vllm_latency(path, **RUN)  # type: ignore[arg-type]
    assert len(info.value.message) < len(str(path)) + 250, info.value.message


def test_u2028_inside_a_json_string_does_not_split_the_line(tmp_path: Path) -> None:
    """Was "malformed JSON (Unterminated string)" on a valid line, and every later line miscounted:
    str.splitlines() splits at U+2028, U+2029 and U+0085, which JSON allows raw in a string."""
    odd = SGLANG_LINE.replace('"h100-llama31-8b"', '"a\u2028b\x85c\u2029d"')
    path = _write(tmp_path, "r.jsonl", f"{odd}\n{SGLANG_LINE}\n{{]\n")
    assert _sglang_error(path).startswith(f"{path}:3: malformed JSON")
    path.write_bytes(f"{odd}\r\n{SGLANG_LINE}\r\n".encode())
    rows = read_sglang_one_batch(path, tp=1, **RUN)  # type: ignore[arg-type]
    assert [m.origin for m in rows] == [f"{path}:1"] * 2 + [f"{path}:2"] * 2


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    """Was "malformed JSON (Unexpected UTF-8 BOM (decode using utf-8-sig), column 1)"."""
    for base in ("sglang", "vllm-pt"):
        path = tmp_path / BASES[base][1]
        path.write_bytes(b"\xef\xbb\xbf" + BASE_TEXT[base].encode())
        plain = read_case(EngineCase(base, 0, (), (), 1, (None, None, None), False), DATA / BASES[base][1])
        loaded = read_case(EngineCase(base, 0, (), (), 1, (None, None, None), False), path)
        assert [replace(m, origin="") for m in loaded] == [replace(m, origin="") for m in plain]


def test_nan_in_a_vllm_file_names_its_line(tmp_path: Path) -> None:
    """Was the file without a line: the JSON's NaN is refused during parsing, before any field."""
    path = _write(tmp_path, "l.json", VLLM_DOC % "NaN")
    assert _vllm_error(path) == f"{path}:3: NaN is not a finite number"
    path = _write(tmp_path, "l.json", '{"note": "NaN", "avg_latency": -Infinity, "latencies": [1]}')
    assert _vllm_error(path) == f"{path}:1: -Infinity is not a finite number"


BENIGN = st.one_of(
    st.text(max_size=20),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.just(Raw("<U+2028 in a string>")),
)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["run_name", "prefill_throughput", "total_latency", "overall_throughput", "extra"]), value=BENIGN)
def test_fields_the_reader_ignores_do_not_change_the_rows(field: str, value: Any) -> None:
    """Any value (raw non-ASCII text included) in a field the reader does not use leaves the rows as they were."""
    lines = BASE_TEXT["sglang"].split("\n")
    doc = _parse(lines[0])
    slot = [i for i, (k, _) in enumerate(doc) if k == field]
    if slot:
        doc[slot[0]][1] = value
    else:
        doc.append([field, value])
    lines[0] = _dump(doc)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
        try:
            rows = read_sglang_one_batch(path, tp=1, **RUN)  # type: ignore[arg-type]
        except InputError as exc:
            assert "not UTF-8" in exc.message, exc.message  # a lone surrogate in the text
            return
    expected = read_sglang_one_batch(SGLANG, tp=1, **RUN)  # type: ignore[arg-type]
    assert [replace(m, origin=m.origin.replace(str(path), "")) for m in rows] == [
        replace(m, origin=m.origin.replace(str(SGLANG), "")) for m in expected
    ]


SGLANG = DATA / BASES["sglang"][1]
