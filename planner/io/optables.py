"""Read aiconfigurator-core's per-op latency tables, and write the kernel-factor overlay fitted on them.

aiconfigurator-core (NVIDIA, Apache-2.0; not a dependency of planner) ships kernel latencies
measured inside each serving engine as ``<system>/<op>/<engine>/<version>/<table>.parquet`` under
its ``systems/data`` directory. This module reads the four tables the performance core's kernel
factors are fitted on (:mod:`planner.calibrate.opfit`) into numpy arrays, latencies in seconds:

* ``gemm/<engine>/<v>/gemm_perf.parquet``: ``gemm_dtype``, ``kernel_source``, ``m``, ``n``, ``k``
* ``attention/<engine>/<v>/context_attention_perf.parquet`` and
  ``generation_attention_perf.parquet``: ``batch_size``, ``isl``, ``step``, ``num_heads``,
  ``num_key_value_heads``, ``head_dim``, ``kv_cache_dtype``, ``window_size`` (0 where absent).
  A generation row times one decode token over a context of ``isl + step`` tokens (the SDK's
  loader keys generation rows by ``s = isl + step``; the collector writes ``isl = 1``).
* ``comm/<engine>/<v>/custom_allreduce_perf.parquet`` (the engine's own all-reduce; ``backend``
  names the CUDA-graph or eager path where the table records it) and
  ``comm/nccl/<v>/nccl_perf.parquet``: ``num_gpus``, ``message_size``. ``message_size`` counts
  elements, not bytes: the collectors log the element count of the tensor reduced (the NCCL
  collector divides nccl-tests' byte size by 2 for ``half``, 1 for ``int8``).

``latency`` is in milliseconds in every table. For each (system, op, engine) the newest version
directory that holds the table is read (versions compare as releases: ``0.5.14 > 0.5.6.post2``,
``1.3.0rc20 > 1.3.0rc10``, a release after its rcs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.errors import InputError
from planner.io.output import write_text_atomic
from planner.io.schemas import EfficiencyEntry
from planner.io.yamlio import dumps

FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]

SYSTEM_GPU: dict[str, str] = {
    "h100_sxm": "h100-sxm",
    "h200_sxm": "h200-sxm",
    "b200_sxm": "b200",
    "a100_sxm": "a100-sxm-80gb",
    "l40s": "l40s",
    "h100_pcie": "h100-pcie",
    "a100_pcie": "a100-pcie-80gb",
    "b300_sxm": "b300",
    "gb200": "gb200",
}
"""aiconfigurator system directory → planner catalog GPU id (systems not listed are skipped)."""

MS_PER_S = 1e3
GEMM_FILE = "gemm_perf.parquet"
CONTEXT_FILE = "context_attention_perf.parquet"
GENERATION_FILE = "generation_attention_perf.parquet"
ALLREDUCE_FILE = "custom_allreduce_perf.parquet"
NCCL_FILE = "nccl_perf.parquet"
OP_DIRS = ("gemm", "attention", "comm")

_GEMM_COLUMNS = ("gemm_dtype", "kernel_source", "m", "n", "k", "latency")
_ATTN_COLUMNS = (
    "kernel_source", "batch_size", "isl", "step", "num_heads", "num_key_value_heads", "head_dim",
    "kv_cache_dtype", "latency",
)  # fmt: skip
_AR_COLUMNS = ("kernel_source", "num_gpus", "message_size", "latency")
_NCCL_COLUMNS = ("op_name", "nccl_dtype", "num_gpus", "message_size", "latency")


@dataclass(frozen=True, slots=True, kw_only=True)
class TableRef:
    """One table file: where it is, and the (system, op, engine, version) it belongs to."""

    system: str
    op: str  # gemm, attention or comm
    engine: str  # vllm, sglang, trtllm, or nccl for comm/nccl
    version: str
    path: Path

    @property
    def name(self) -> str:
        """``<system>/<op>/<engine>/<version>/<file>``, the file's place in the tables directory."""
        return f"{self.system}/{self.op}/{self.engine}/{self.version}/{self.path.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GemmTable:
    ref: TableRef
    dtype: StrArray
    kernel: StrArray
    m: FloatArray
    n: FloatArray
    k: FloatArray
    latency_s: FloatArray


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionTable:
    ref: TableRef
    kernel: StrArray
    batch: FloatArray
    isl: FloatArray
    step: FloatArray
    heads: FloatArray
    kv_heads: FloatArray
    head_dim: FloatArray
    kv_dtype: StrArray
    window: FloatArray  # 0: full attention
    latency_s: FloatArray

    @property
    def context(self) -> FloatArray:
        """Context length of a generation row: ``isl + step`` tokens."""
        return self.isl + self.step


@dataclass(frozen=True, slots=True, kw_only=True)
class AllReduceTable:
    ref: TableRef
    kernel: StrArray
    backend: StrArray  # "" where the table has no backend column
    dtype: StrArray  # allreduce_dtype / nccl_dtype
    op_name: StrArray  # all_reduce for every custom all-reduce row
    num_gpus: FloatArray
    message_elements: FloatArray
    latency_s: FloatArray


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineTables:
    """The newest tables of one engine on one system (None where the system has none)."""

    system: str
    gemm: GemmTable | None
    context: AttentionTable | None
    generation: AttentionTable | None
    allreduce: AllReduceTable | None  # the engine's own
    nccl: AllReduceTable | None


_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)(?:[._-]?(a|b|rc|dev)(\d*))?(?:[._-]?post(\d*))?(.*)$", re.IGNORECASE)


def version_key(version: str) -> tuple[Any, ...]:
    """Sort key of a release string: numeric parts, then dev < a < b < rc < release, then post."""
    match = _VERSION.match(version.strip())
    if match is None:
        return ((), 0, 0, 0, version)
    release = tuple(int(p) for p in match.group(1).split("."))
    release += (0,) * (6 - len(release))
    pre = {"dev": 0, "a": 1, "b": 2, "rc": 3}.get((match.group(2) or "").lower(), 4)
    return (release, pre, int(match.group(3) or 0), int(match.group(4) or -1), match.group(5))


def find_data_dir(root: Path) -> Path:
    """The directory holding ``<system>/<op>/...``: ``root`` itself, or its ``data`` or
    ``systems/data`` (the aiconfigurator_core package directory or its ``systems``)."""
    if not root.exists():
        raise InputError(f"--op-tables {root}: no such directory")
    if not root.is_dir():
        raise InputError(f"--op-tables {root}: not a directory")
    for candidate in (root / "systems" / "data", root / "data", root):
        if candidate.is_dir() and any((sub / op).is_dir() for sub in candidate.iterdir() if sub.is_dir() for op in OP_DIRS):
            return candidate
    raise InputError(
        f"--op-tables {root}: no aiconfigurator op tables found",
        hint="give aiconfigurator_core/systems/data or a directory laid out like it: "
        "<system>/<op>/<engine>/<version>/*.parquet (e.g. h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet)",
    )


def systems(data_dir: Path) -> list[str]:
    """System directories that hold at least one op directory, sorted."""
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir() and any((p / op).is_dir() for op in OP_DIRS))


def latest(data_dir: Path, system: str, op: str, engine: str, filename: str) -> TableRef | None:
    """The newest ``<version>`` under ``<system>/<op>/<engine>`` whose directory holds ``filename``."""
    base = data_dir / system / op / engine
    if not base.is_dir():
        return None
    versions = [p.name for p in base.iterdir() if (p / filename).is_file()]
    if not versions:
        return None
    version = max(versions, key=version_key)
    return TableRef(system=system, op=op, engine=engine, version=version, path=base / version / filename)


def _read(ref: TableRef, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    path = ref.path
    try:
        schema = pq.read_schema(path)
        names = set(schema.names)
        missing = [c for c in required if c not in names]
        if missing:
            raise InputError(
                f"{path}: column {missing[0]!r} missing (an aiconfigurator {path.stem} table has {', '.join(required)})"
            )
        table = pq.read_table(path, columns=list(dict.fromkeys([*required, *(c for c in optional if c in names)])))
    except InputError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    out: dict[str, Any] = {}
    for name in table.column_names:
        column = table.column(name)
        if column.null_count:
            raise InputError(f"{path}: column {name!r}: {column.null_count} missing value(s)")
        out[name] = column.to_numpy(zero_copy_only=False)
    out["__rows__"] = table.num_rows
    return out


def _numbers(path: Path, data: dict[str, Any], name: str, *, positive: bool = False) -> FloatArray:
    raw = data[name]
    try:
        values = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: column {name!r}: not numbers (type {getattr(raw, 'dtype', type(raw))})") from None
    bad = ~np.isfinite(values) | ((values <= 0) if positive else (values < 0))
    if bad.any():
        row = int(np.argmax(bad))
        what = "a positive, finite number" if positive else "a non-negative, finite number"
        shown = raw[row].item() if hasattr(raw[row], "item") else raw[row]
        raise InputError(f"{path}: column {name!r}, row {row}: {shown!r} is not {what}")
    return values


def _strings(data: dict[str, Any], name: str, rows: int) -> StrArray:
    if name not in data:
        return np.full(rows, "", dtype=np.str_)
    return np.asarray([str(v) for v in data[name]], dtype=np.str_)


def read_gemm(ref: TableRef) -> GemmTable:
    d = _read(ref, _GEMM_COLUMNS)
    p = ref.path
    return GemmTable(
        ref=ref,
        dtype=_strings(d, "gemm_dtype", d["__rows__"]),
        kernel=_strings(d, "kernel_source", d["__rows__"]),
        m=_numbers(p, d, "m", positive=True),
        n=_numbers(p, d, "n", positive=True),
        k=_numbers(p, d, "k", positive=True),
        latency_s=_numbers(p, d, "latency", positive=True) / MS_PER_S,
    )


def read_attention(ref: TableRef) -> AttentionTable:
    d = _read(ref, _ATTN_COLUMNS, optional=("window_size",))
    p, rows = ref.path, d["__rows__"]
    return AttentionTable(
        ref=ref,
        kernel=_strings(d, "kernel_source", rows),
        batch=_numbers(p, d, "batch_size", positive=True),
        isl=_numbers(p, d, "isl"),
        step=_numbers(p, d, "step"),
        heads=_numbers(p, d, "num_heads", positive=True),
        kv_heads=_numbers(p, d, "num_key_value_heads", positive=True),
        head_dim=_numbers(p, d, "head_dim", positive=True),
        kv_dtype=_strings(d, "kv_cache_dtype", rows),
        window=_numbers(p, d, "window_size") if "window_size" in d else np.zeros(rows),
        latency_s=_numbers(p, d, "latency", positive=True) / MS_PER_S,
    )


def read_allreduce(ref: TableRef) -> AllReduceTable:
    """An engine's ``custom_allreduce_perf`` table or NCCL's ``nccl_perf`` table."""
    nccl = ref.path.name == NCCL_FILE
    d = _read(ref, _NCCL_COLUMNS if nccl else _AR_COLUMNS, optional=("kernel_source", "backend", "allreduce_dtype"))
    p, rows = ref.path, d["__rows__"]
    return AllReduceTable(
        ref=ref,
        kernel=_strings(d, "kernel_source", rows),
        backend=_strings(d, "backend", rows),
        dtype=_strings(d, "nccl_dtype" if nccl else "allreduce_dtype", rows),
        op_name=_strings(d, "op_name", rows) if nccl else np.asarray(["all_reduce"] * rows, dtype=np.str_),
        num_gpus=_numbers(p, d, "num_gpus", positive=True),
        message_elements=_numbers(p, d, "message_size", positive=True),
        latency_s=_numbers(p, d, "latency", positive=True) / MS_PER_S,
    )


def engine_tables(data_dir: Path, system: str, engine: str) -> EngineTables:
    """The newest gemm, attention and all-reduce tables of ``engine`` on ``system``, and NCCL's."""

    def load(ref: TableRef | None, reader: Any) -> Any:
        return None if ref is None else reader(ref)

    return EngineTables(
        system=system,
        gemm=load(latest(data_dir, system, "gemm", engine, GEMM_FILE), read_gemm),
        context=load(latest(data_dir, system, "attention", engine, CONTEXT_FILE), read_attention),
        generation=load(latest(data_dir, system, "attention", engine, GENERATION_FILE), read_attention),
        allreduce=load(latest(data_dir, system, "comm", engine, ALLREDUCE_FILE), read_allreduce),
        nccl=load(latest(data_dir, system, "comm", "nccl", NCCL_FILE), read_allreduce),
    )


OVERLAY_HEADER = """\
# Kernel efficiency factors of the performance core for the `{engine}` engine, fitted by
# `planner calibrate fit --op-tables` on aiconfigurator-core's per-op latency tables (fitted_on names
# the tables and versions). Only the kernel factors are here: the per-step overheads
# (prefill_fixed_s, decode_fixed_s, decode_per_seq_s) are not in the op tables and come from
# end-to-end measurements of the engine; merge them in before this file is a loadable catalog entry.
"""

KERNEL_FACTORS = (
    "compute_frac", "attention_compute_frac", "memory_frac", "allreduce_latency_s", "allreduce_bandwidth_frac",
    "gemm_half_dim", "gemm_dim_exp", "overlap_q",
)  # fmt: skip
_PLACEHOLDERS = {"prefill_fixed_s": 0.0, "decode_fixed_s": 0.0, "decode_per_seq_s": 0.0}


def write_kernel_overlay(
    path: Path, engine: str, entries: Mapping[str, Mapping[str, Any]], *, inputs: tuple[Path, ...] = ()
) -> None:
    """Write ``entries`` (GPU id → kernel factors, fitted_on, source, as_of, an fp8 set under
    ``fp8``) as an efficiency overlay of ``engine``. Each entry is checked against the catalog
    schema (:class:`~planner.io.schemas.EfficiencyEntry`) with the three overhead factors it lacks
    filled in for the check only; they are not written."""
    for gpu, entry in entries.items():
        full = {**entry, **_PLACEHOLDERS}
        for block in ("fp8", "fp4"):
            if block in entry:
                full[block] = {**entry[block], **_PLACEHOLDERS}
        try:
            EfficiencyEntry.model_validate(full)
        except ValueError as exc:
            raise InputError(f"--write {path}: the factors fitted for {gpu} are not a valid catalog entry ({exc})") from None
    doc = {"schema_version": 1, "engine": engine, "efficiency": {gpu: dict(e) for gpu, e in sorted(entries.items())}}
    write_text_atomic(path, OVERLAY_HEADER.format(engine=engine) + dumps(doc), inputs=inputs)
