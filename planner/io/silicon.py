"""Read end-to-end serving measurements at fixed concurrency in aiconfigurator-core's
``systems/silicon_sample.csv`` form (one row per benchmark point: engine, model, system, ISL/OSL,
concurrency, parallelism, measured TTFT and TPOT in ms)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path

from planner.domain import ModelSpec, ServingMeasurement
from planner.errors import InputError
from planner.io.catalog import IdIndex
from planner.io.yamlio import read_text

REQUIRED = (
    "id",
    "backend",
    "model_path",
    "system",
    "mode",
    "isl",
    "osl",
    "batch_size",
    "tp_size",
    "silicon_ttft_ms",
    "silicon_tpot_ms",
)
# aiconfigurator's system names -> catalog GPU ids
SYSTEMS = {
    "a100_sxm": "a100-sxm-80gb",
    "a100_pcie": "a100-pcie-80gb",
    "b200_sxm": "b200",
    "h100_sxm": "h100-sxm",
    "h100_pcie": "h100-pcie",
    "h200_sxm": "h200-sxm",
    "l40s": "l40s",
    "b300_sxm": "b300",
    "gb200": "gb200",
    "l4": "l4",
}
_PRECISIONS = {
    "": "bf16", "bf16": "bf16", "fp16": "bf16", "float16": "bf16", "fp8": "fp8", "fp8_block": "fp8", "nvfp4": "fp4",
    "fp4": "fp4",
}  # fmt: skip
_CONCURRENCY = re.compile(r"silicon_concurrency=(\d+)")


def _int(row: dict[str, str | None], column: str, where: str, default: int | None = None) -> int:
    text = (row.get(column) or "").strip()
    if not text:
        if default is not None:
            return default
        raise InputError(f"{where}: column {column!r}: missing value")
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: column {column!r}: {text!r} is not a number") from None
    if value == 0 and default is not None:  # the file writes 0 for a parallelism it does not use
        return default
    if value != int(value) or not 0 < value < 2**31:
        raise InputError(f"{where}: column {column!r}: {text!r} is not a positive whole number")
    return int(value)


def _ms(row: dict[str, str | None], column: str, where: str) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: column {column!r}: {text!r} is not a number") from None
    if not (value > 0 and value < float("inf")):
        raise InputError(f"{where}: column {column!r}: {text!r} is not a positive finite time")
    return value / 1000.0


def read_silicon(path: Path, models: Mapping[str, ModelSpec]) -> list[ServingMeasurement]:
    """See :func:`_read_silicon`; a malformed CSV (a field over the ``csv`` module's 128 KiB limit) is an InputError."""
    try:
        return _read_silicon(path, models)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None


def _read_silicon(path: Path, models: Mapping[str, ModelSpec]) -> list[ServingMeasurement]:
    """Every row of ``path``; raises :class:`InputError` naming the line of a malformed row."""
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}", hint=f"expected the columns {', '.join(REQUIRED)}")
    index = IdIndex.models(models)
    out = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row:  # more fields than the header
            raise InputError(f"{where}: more fields than the header has columns")
        source = row.get("silicon_data_source") or ""
        found = _CONCURRENCY.search(source)
        mode = (row.get("mode") or "").strip()
        if found:
            concurrency = int(found.group(1))
        elif mode == "disagg" and not (row.get("batch_size") or "").strip():  # every decode slot busy
            concurrency = _int(row, "decode_batch_size", where) * _int(row, "decode_num_workers", where, 1)
        else:
            concurrency = _int(row, "batch_size", where)
        raw_model = (row.get("model_path") or "").strip()
        raw_gpu = (row.get("system") or "").strip()
        raw_precision = (row.get("gemm_quant_mode") or row.get("precision") or "").strip().lower()
        out.append(
            ServingMeasurement(
                id=(row.get("id") or "").strip(),
                engine=(row.get("backend") or "").strip().lower(),
                engine_version=(row.get("backend_version") or "").strip(),
                raw_model=raw_model,
                model=index.find(raw_model) if raw_model else None,
                raw_gpu=raw_gpu,
                gpu=SYSTEMS.get(raw_gpu),
                precision=_PRECISIONS.get(raw_precision, raw_precision),
                mode=mode,
                isl=_int(row, "isl", where),
                osl=_int(row, "osl", where),
                concurrency=concurrency,
                tp=_int(row, "tp_size", where, 1),
                pp=_int(row, "pp_size", where, 1),
                attention_dp=_int(row, "attention_dp_size", where, 1),
                moe_ep=_int(row, "moe_ep_size", where, 1),
                moe_tp=_int(row, "moe_tp_size", where, 1),
                workers_given=bool(
                    (row.get("prefill_num_workers") or "").strip() and (row.get("decode_num_workers") or "").strip()
                ),
                prefill_tp=_int(row, "prefill_tp_size", where, 1),
                prefill_workers=_int(row, "prefill_num_workers", where, 1),
                prefill_pp=_int(row, "prefill_pp_size", where, 1),
                prefill_attention_dp=_int(row, "prefill_attention_dp_size", where, 1),
                prefill_moe_tp=_int(row, "prefill_moe_tp_size", where, 1),
                prefill_moe_ep=_int(row, "prefill_moe_ep_size", where, 1),
                decode_tp=_int(row, "decode_tp_size", where, 1),
                decode_workers=_int(row, "decode_num_workers", where, 1),
                decode_pp=_int(row, "decode_pp_size", where, 1),
                decode_attention_dp=_int(row, "decode_attention_dp_size", where, 1),
                decode_moe_tp=_int(row, "decode_moe_tp_size", where, 1),
                decode_moe_ep=_int(row, "decode_moe_ep_size", where, 1),
                ttft_s=_ms(row, "silicon_ttft_ms", where),
                tpot_s=_ms(row, "silicon_tpot_ms", where),
                origin=where,
            )
        )
    return out


NODE_GPUS = 8
"""GPUs in one node of every system the file has (H100/H200/B200 HGX)."""


def corrected_layout(m: ServingMeasurement) -> ServingMeasurement | None:
    """An aggregated row whose recorded worker is wider than a node with ``moe_tp_size = moe_ep_size = n > 1`` and
    ``tp_size x attention_dp_size = n²`` (TP 16 with MoE 4x4, TP 64 or DP-attention 64 with MoE 8x8), as the
    ``n``-GPU worker it measured: TP (or DP attention) ``n / ...`` with EP ``n``, MoE TP 1; None for any other row.

    Why: in aiconfigurator-core 0.12.0's silicon_sample.csv every such row that has a twin in the file (43
    of the 231 such rows: the same engine, model, system, precision, ISL/OSL and the same measured TTFT and TPOT to
    every digit) has it at exactly this layout (TP 4 EP 4, TP 8 EP 8, DP-attention 8 EP 8, DP-attention 4 EP 4): the file
    recorded the GPU count as the MoE TP degree and multiplied it in. A correction of the file, not a measurement:
    reports say which rows it touched."""
    from dataclasses import replace

    n = m.moe_tp
    if m.mode != "agg" or n <= 1 or m.moe_ep != n or m.tp * m.attention_dp != n * n or n * n <= NODE_GPUS:
        return None
    if m.attention_dp > 1:
        if m.attention_dp % n:
            return None
        return replace(m, attention_dp=m.attention_dp // n, moe_tp=1, origin=f"{m.origin} (layout corrected)")
    return replace(m, tp=m.tp // n, moe_tp=1, origin=f"{m.origin} (layout corrected)")


def with_corrected_layouts(rows: list[ServingMeasurement]) -> tuple[list[ServingMeasurement], int]:
    """``rows`` with :func:`corrected_layout` applied where it applies, and how many it changed."""
    out, changed = [], 0
    for r in rows:
        fixed = corrected_layout(r)
        changed += fixed is not None
        out.append(r if fixed is None else fixed)
    return out, changed
