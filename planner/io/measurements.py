"""Read step-time measurements: the planner measurement CSV and the Splitwise table."""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from planner.domain import Measurement
from planner.errors import InputError
from planner.io.yamlio import read_text

MEASUREMENT_COLUMNS = ("phase", "model", "gpu", "tp", "batch", "tokens", "context_tokens", "precision", "latency_ms")

_SPLITWISE_GPUS = {"a100-80gb": "a100-sxm-80gb", "h100-80gb": "h100-sxm"}
_SPLITWISE_MODELS = {"llama2-70b": "llama-2-70b"}


def _number(text: str | None, where: str, column: str, kind: type = float) -> float:
    if text is None:  # a row shorter than the header (csv.DictReader fills None)
        raise InputError(f"{where}: column {column!r}: missing value (the row has fewer fields than the header)")
    try:
        value = kind(text)
    except ValueError:
        raise InputError(f"{where}: column {column!r}: {text!r} is not a number") from None
    if not value == value or value in (float("inf"), float("-inf")):
        raise InputError(f"{where}: column {column!r}: {text!r} is not a finite number")
    return float(value)


def _whole(value: float, where: str, column: str, minimum: int) -> int:
    """A count: a whole number from ``minimum`` up (below 2**53, where floats stop being exact)."""
    if value != int(value) or not minimum <= value < 2**53:
        raise InputError(f"{where}: column {column!r}: {value:g} is not a whole number >= {minimum}")
    return int(value)


def read_splitwise(path: Path) -> tuple[list[Measurement], set[tuple[str, int, int, int, int]]]:
    """Splitwise ``perf_model.csv``; see :func:`_read_splitwise`. A malformed CSV is an InputError."""
    try:
        return _read_splitwise(path)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None


def _read_splitwise(path: Path) -> tuple[list[Measurement], set[tuple[str, int, int, int, int]]]:
    """Splitwise ``perf_model.csv`` → one prefill and one decode measurement per configuration
    (median of repeats). Returns the measurements and the configurations it could not use as
    (hardware, tp, prompt, batch, output) keys of rows whose prefill beats the compute floor are
    decided by the fit, not here."""
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text))
    need = {"model", "hardware", "prompt_size", "batch_size", "token_size", "prompt_time", "token_time", "tensor_parallel"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise InputError(f"{path}: not a Splitwise perf_model.csv (needs columns {', '.join(sorted(need))})")
    groups: dict[tuple[str, str, int, int, int, int], list[tuple[int, float, float]]] = defaultdict(list)
    skipped: set[tuple[str, int, int, int, int]] = set()
    for line, row in enumerate(reader, start=2):
        where = f"{path}:{line}"
        tp = _whole(_number(row["tensor_parallel"], where, "tensor_parallel", int), where, "tensor_parallel", 1)
        key_tail = (
            tp,
            _whole(_number(row["prompt_size"], where, "prompt_size", int), where, "prompt_size", 1),
            _whole(_number(row["batch_size"], where, "batch_size", int), where, "batch_size", 1),
            _whole(_number(row["token_size"], where, "token_size", int), where, "token_size", 0),
        )
        if row["hardware"] not in _SPLITWISE_GPUS or row["model"] not in _SPLITWISE_MODELS:
            skipped.add((f"{row['model']}/{row['hardware']}", *key_tail))
            continue
        times = (_number(row["prompt_time"], where, "prompt_time"), _number(row["token_time"], where, "token_time"))
        for column, value in zip(("prompt_time", "token_time"), times, strict=True):
            if value <= 0:
                raise InputError(f"{where}: column {column!r}: must be positive, got {row[column]}")
        groups[(row["model"], row["hardware"], *key_tail)].append((line, *times))
    out: list[Measurement] = []
    for (model, hw, tp, prompt, batch, osl), rows in sorted(groups.items()):
        lines = [r[0] for r in rows]
        origin = f"{path.name}:{min(lines)}-{max(lines)}" if len(lines) > 1 else f"{path.name}:{lines[0]}"
        base = Measurement(
            phase="prefill",
            model=_SPLITWISE_MODELS[model],
            gpu=_SPLITWISE_GPUS[hw],
            tp=tp,
            batch=batch,
            tokens=prompt,
            context_tokens=0.0,
            precision="bf16",
            latency_s=statistics.median(r[1] for r in rows) / 1e3,
            origin=origin,
            engine="splitwise",
        )
        out.append(base)
        decode_s = statistics.median(r[2] for r in rows) / 1e3
        out.append(replace(base, phase="decode", context_tokens=prompt + osl / 2, latency_s=decode_s))
    return out, skipped


def read_measurements(path: Path) -> list[Measurement]:
    """The planner measurement CSV: one row per measured step (see docs/calibration.md)."""
    try:
        return _read_measurements(path)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None


def _read_measurements(path: Path) -> list[Measurement]:
    text = read_text(path)
    # Lines starting with '#' are provenance comments (calibrate run writes them); keep numbering.
    lines = ["" if ln.lstrip().startswith("#") else ln for ln in text.splitlines()]
    header_at = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if header_at is None:
        raise InputError(f"{path}: empty file")
    reader = csv.reader(io.StringIO("\n".join(lines[header_at:])))
    fieldnames = [c.strip() for c in next(reader)]
    missing = [c for c in MEASUREMENT_COLUMNS if c not in fieldnames]
    if missing:
        raise InputError(f"{path}:{header_at + 1}: missing column(s) {', '.join(missing)}")
    out = []
    for cells in reader:
        if not cells or not any(c.strip() for c in cells):
            continue
        line = header_at + reader.line_num
        where = f"{path}:{line}"
        if len(cells) != len(fieldnames):
            raise InputError(f"{where}: {len(cells)} columns, the header has {len(fieldnames)}")
        row = dict(zip(fieldnames, cells, strict=True))
        phase = row["phase"].strip()
        if phase not in ("prefill", "decode"):
            raise InputError(f"{where}: column 'phase': {phase!r} is not prefill or decode")
        precision = row["precision"].strip()
        if precision not in ("bf16", "fp8"):
            raise InputError(f"{where}: column 'precision': {precision!r} is not bf16 or fp8")
        values = {c: _number(row[c], where, c) for c in ("tp", "batch", "tokens", "context_tokens", "latency_ms")}
        for c in ("tp", "batch", "latency_ms"):
            if values[c] <= 0:
                raise InputError(f"{where}: column {c!r}: must be positive, got {row[c]}")
        counts = {c: _whole(values[c], where, c, 0 if c == "tokens" else 1) for c in ("tp", "batch", "tokens")}
        if values["context_tokens"] < 0:
            raise InputError(f"{where}: column 'context_tokens': must be 0 or more, got {row['context_tokens']}")
        out.append(
            Measurement(
                phase=phase,
                model=row["model"].strip(),
                gpu=row["gpu"].strip(),
                tp=counts["tp"],
                batch=counts["batch"],
                tokens=counts["tokens"],
                context_tokens=values["context_tokens"],
                precision=precision,  # type: ignore[arg-type]
                latency_s=values["latency_ms"] / 1e3,
                origin=where,
                engine=row.get("engine", "").strip(),
            )
        )
    return out
