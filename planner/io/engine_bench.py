"""Read serving engines' own benchmark files as step measurements (docs/calibration.md).

* SGLang ``python -m sglang.bench_one_batch`` appends one JSON object per (batch size, input
  length, output length) run to ``--result-filename`` (JSON Lines): ``prefill_latency`` is the
  wall time of one prefill step of ``batch_size`` prompts of ``input_len`` tokens, and
  ``median_decode_latency`` the median over the run's ``output_len - 1`` decode steps of
  ``batch_size`` sequences (both in seconds). Each line gives a prefill and a decode measurement.
* vLLM ``vllm bench latency --output-json`` (formerly ``benchmarks/benchmark_latency.py``) writes
  ``{"avg_latency", "latencies", "percentiles", ...}``: seconds for one ``generate`` call of
  ``batch_size`` prompts of ``input_len`` tokens that each generate ``output_len`` tokens; with
  ``SAVE_TO_PYTORCH_BENCHMARK_FORMAT`` set it also writes ``*.pytorch.json``, a list of records
  that carry the run's arguments. Each file gives one ``batch`` measurement (a whole static batch:
  one prefill step and ``output_len - 1`` decode steps; :func:`planner.calibrate.predict_s`).

Neither file records the catalog model, GPU or precision (nor, for SGLang and the plain vLLM file,
the TP degree or, for the plain vLLM file, the batch shape): the caller passes them.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from planner.domain import Measurement, Precision
from planner.errors import InputError
from planner.io.yamlio import read_text

# vLLM's smallest defaults for the offline LLM class (V1 engine; GPUs under 70 GiB or A100), from
# EngineArgs' default_max_num_batched_tokens / default_max_num_seqs in vllm-project/vllm
# vllm/engine/arg_utils.py (read 2026-11-27; 16,384 / 1,024 on H100-class GPUs): larger batches or
# prompts may be split by its scheduler, so the file must record the real limits.
VLLM_DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192
VLLM_DEFAULT_MAX_NUM_SEQS = 256


SHOWN_CHARS = 60  # of a bad value in an error message


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 3]}..."


def _brief(value: object) -> str:
    """A bad value as Python writes it (``True``), cut to one short line."""
    try:
        return _cut(repr(value))
    except RecursionError:  # a list nested a thousand deep
        return f"a {type(value).__name__}"


def _show(value: object) -> str:
    """A bad value as JSON, cut to one short line (a value can be a 100,000-character string)."""
    try:
        return _cut(json.dumps(value))
    except (ValueError, RecursionError):  # too deep or too long an integer to write back
        return f"a {type(value).__name__}"


def _as_float(value: object) -> float:
    """A JSON number as a float; nan for anything else, inf for an integer beyond the float range."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # a 400-digit integer
        return math.inf if value > 0 else -math.inf


def _seconds(value: object, where: str, field: str) -> float:
    """A positive, finite time in seconds."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InputError(f"{where}: field {field!r}: {_show(value)} is not a number (seconds)")
    seconds = _as_float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"{where}: field {field!r}: {_show(value)} is not a positive, finite time in seconds")
    return seconds


def _count(value: object, where: str, field: str) -> int:
    """A whole number >= 1 (below 2**53, where floats stop being exact)."""
    number = _as_float(value)
    if math.isnan(number) or (math.isfinite(number) and number != math.floor(number)):
        raise InputError(f"{where}: field {field!r}: {_show(value)} is not a whole number")
    if not 1 <= number < 2**53:
        raise InputError(f"{where}: field {field!r}: {_show(value)} must be 1 or more (and below 2**53)")
    return int(number)


def _required(doc: dict[str, Any], field: str, where: str, what: str) -> object:
    if field not in doc:
        raise InputError(f"{where}: field {field!r}: missing ({what})")
    return doc[field]


def _loads(text: str, where: str, *, one_line: bool) -> object:
    """Parse JSON; a syntax error names the line (``where`` already has it for a JSON Lines line)."""

    def at(line: int | None) -> str:
        return where if one_line or line is None else f"{where}:{line}"

    def integer(digits: str) -> int:
        try:
            return int(digits)
        except ValueError:  # over Python's limit on the digits of an int (sys.get_int_max_str_digits())
            line = text.count("\n", 0, max(text.find(digits), 0)) + 1
            limit = sys.get_int_max_str_digits()
            raise InputError(f"{at(line)}: an integer of {len(digits.lstrip('-'))} digits (at most {limit})") from None

    def constant(name: str) -> float:  # NaN, Infinity or -Infinity as a value (not inside a string)
        found = re.search(r"[:\[,]\s*" + re.escape(name) + r"(?![\w.])", text)
        line = None if found is None else text.count("\n", 0, found.end()) + 1
        raise InputError(f"{at(line)}: {name} is not a finite number")

    try:
        return json.loads(text, parse_int=integer, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{at(exc.lineno)}: malformed JSON ({exc.msg}, column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply (arrays or objects inside each other)") from None


def _text(path: Path) -> str:
    """The file's UTF-8 text, without the byte-order mark that some Windows tools put first."""
    return read_text(path).removeprefix("\ufeff")


def _line_of(text: str, key: str) -> int | None:
    """The line of the first ``"key"`` in a JSON text (1-based), to point an error at it."""
    at = text.find(json.dumps(key))
    return None if at < 0 else text.count("\n", 0, at) + 1


def read_sglang_one_batch(path: Path, *, model: str, gpu: str, tp: int, precision: Precision) -> list[Measurement]:
    """SGLang ``bench_one_batch`` JSON Lines → per line a prefill measurement (``prefill_latency``)
    and, when ``output_len > 1``, a decode measurement (``median_decode_latency``) at context
    ``input_len + output_len / 2``: decode step ``i`` (0-based, ``output_len - 1`` of them) runs
    over ``input_len + i + 1`` tokens, and the median step of that range sits at this context.
    Both rows of a line share its ``file:line`` origin (an impossible prefill drops its decode)."""
    text = _text(path)
    out: list[Measurement] = []
    what = "not an SGLang bench_one_batch result line"
    # Lines end at "\n", "\r\n" or "\r" (never inside JSON, which escapes them in strings) and
    # nowhere else: str.splitlines() also splits at U+2028, U+2029 or U+0085, which JSON allows
    # raw inside a string, and would then reject a valid line and miscount the lines after it.
    for line_no, line in enumerate(re.split(r"\r\n?|\n", text), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        doc = _loads(line, where, one_line=True)
        if not isinstance(doc, dict):
            raise InputError(f"{where}: expected a JSON object per line, got {type(doc).__name__} ({what})")
        batch = _count(_required(doc, "batch_size", where, what), where, "batch_size")
        input_len = _count(_required(doc, "input_len", where, what), where, "input_len")
        output_len = _count(_required(doc, "output_len", where, what), where, "output_len")
        prefill = Measurement(
            phase="prefill",
            model=model,
            gpu=gpu,
            tp=tp,
            batch=batch,
            tokens=input_len,
            context_tokens=0.0,
            precision=precision,
            latency_s=_seconds(_required(doc, "prefill_latency", where, what), where, "prefill_latency"),
            origin=where,
            engine="sglang",
        )
        out.append(prefill)
        if output_len > 1:  # the script writes the decode median only then
            decode_s = _seconds(
                _required(doc, "median_decode_latency", where, f"written when output_len > 1, here {output_len}"),
                where,
                "median_decode_latency",
            )
            out.append(replace(prefill, phase="decode", tokens=0, context_tokens=input_len + output_len / 2, latency_s=decode_s))
    if not out:
        raise InputError(f"{path}: no result lines (an empty SGLang bench_one_batch file)")
    return out


def _latencies(value: object, where: str, field: str) -> float:
    """The median of a non-empty list of per-iteration latencies in seconds."""
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: field {field!r}: expected a non-empty list of latencies in seconds")
    return statistics.median(_seconds(v, where, f"{field}[{i}]") for i, v in enumerate(value))


def _dict_at(doc: object, keys: tuple[str, ...], where: str, prefix: str) -> dict[str, Any]:
    node = doc
    path = prefix
    for key in keys:
        path = f"{path}.{key}" if path else key
        if not isinstance(node, dict) or key not in node:
            raise InputError(f"{where}: field {path!r}: missing (not a vLLM pytorch-benchmark-format record)")
        node = node[key]
    if not isinstance(node, dict):
        raise InputError(f"{where}: field {path!r}: expected an object")
    return node


def read_vllm_latency(
    path: Path,
    *,
    model: str,
    gpu: str,
    precision: Precision,
    tp: int | None = None,
    batch_size: int | None = None,
    input_len: int | None = None,
    output_len: int | None = None,
) -> list[Measurement]:
    """vLLM ``bench latency`` JSON → ``batch`` measurements (one per file, or one per latency record
    of a ``.pytorch.json`` file): the median of ``latencies`` (seconds) for a static batch of
    ``batch_size`` prompts of ``input_len`` tokens generating ``output_len`` tokens each
    (``tokens`` and ``output_tokens``). The plain ``--output-json`` file
    records no arguments, so they come from the keyword arguments; a ``.pytorch.json`` record's
    ``args`` are used, and must agree with any keyword argument given.

    Refused, because the run is then not one prefill step plus ``output_len - 1`` decode steps:
    ``n != 1`` or beam search (several sequences per prompt), a batch over ``max_num_seqs`` (run
    in waves), and ``batch_size * input_len`` over ``max_num_batched_tokens`` (the prefill is
    chunked and mixed with decodes). Without those limits in the file vLLM's smallest defaults
    apply (256 sequences, 8,192 tokens)."""
    text = _text(path)
    doc = _loads(text, str(path), one_line=False)

    def at(key: str) -> str:
        line = _line_of(text, key)
        return str(path) if line is None else f"{path}:{line}"

    # (origin, median latency, recorded args, JSON path of the args)
    runs: list[tuple[str, float, dict[str, Any], str]] = []
    if isinstance(doc, dict):
        _required(doc, "avg_latency", str(path), "not a vLLM bench latency --output-json file")
        latencies = _required(doc, "latencies", str(path), "not a vLLM bench latency --output-json file")
        runs.append((str(path), _latencies(latencies, at("latencies"), "latencies"), {}, ""))
    elif isinstance(doc, list):
        for i, record in enumerate(doc):
            metric = _dict_at(record, ("metric",), at("metric"), f"[{i}]")
            if metric.get("name") != "latency":
                continue
            args = _dict_at(record, ("benchmark", "extra_info", "args"), at("args"), f"[{i}]")
            latency = _latencies(metric.get("benchmark_values"), at("benchmark_values"), f"[{i}].metric.benchmark_values")
            runs.append((str(path) if len(doc) == 1 else f"{path}[{i}]", latency, args, f"[{i}].benchmark.extra_info.args"))
        if not runs:
            raise InputError(f"{path}: no record with metric.name 'latency' (not a vLLM bench latency .pytorch.json file)")
    else:
        raise InputError(f"{path}: expected a JSON object (--output-json) or a list (.pytorch.json), got {type(doc).__name__}")

    out = []
    for origin, latency_s, args, args_path in runs:

        def recorded(field: str, *, args: dict[str, Any] = args, args_path: str = args_path) -> int | None:
            value = args.get(field)
            return None if value is None else _count(value, at(field), f"{args_path}.{field}")

        def arg(field: str, flag: str, given: int | None, *, origin: str = origin) -> int:
            value = recorded(field)
            if value is None:
                if given is None:
                    raise InputError(f"{origin}: the file does not record {field}: give {flag}")
                return given
            if given is not None and given != value:
                raise InputError(f"{origin}: {flag} {given} contradicts the file's {field} {value}")
            return value

        batch = arg("batch_size", "--batch-size", batch_size)
        prompt = arg("input_len", "--input-len", input_len)
        generated = arg("output_len", "--output-len", output_len)
        degree = arg("tensor_parallel_size", "--tp", tp)
        if args.get("n", 1) != 1 or args.get("use_beam_search", False):
            raise InputError(
                f"{origin}: n={_brief(args.get('n', 1))}, "
                f"use_beam_search={_brief(args.get('use_beam_search', False))}: "
                "several sequences per prompt are not one static batch of batch_size sequences"
            )
        max_seqs = recorded("max_num_seqs") or VLLM_DEFAULT_MAX_NUM_SEQS
        if batch > max_seqs:
            raise InputError(f"{origin}: batch_size {batch} exceeds max_num_seqs {max_seqs}: vLLM runs it in waves")
        budget = recorded("max_num_batched_tokens") or VLLM_DEFAULT_MAX_NUM_BATCHED_TOKENS
        if batch * prompt > budget:
            raise InputError(
                f"{origin}: batch_size x input_len = {batch * prompt} tokens exceeds max_num_batched_tokens {budget}: "
                "vLLM chunks that prefill over several steps mixed with decodes, which has no unambiguous step mapping"
            )
        out.append(
            Measurement(
                phase="batch",
                model=model,
                gpu=gpu,
                tp=degree,
                batch=batch,
                tokens=prompt,
                context_tokens=0.0,
                output_tokens=generated,
                precision=precision,
                latency_s=latency_s,
                origin=origin,
                engine="vllm",
            )
        )
    return out
