"""Request traces on disk: readers and writers for the public formats (refdata/traces.md).

| format      | container | time column (unit)             | input tokens       | output tokens      |
|-------------|-----------|--------------------------------|--------------------|--------------------|
| azure       | CSV       | ``TIMESTAMP`` (date-time)      | ``ContextTokens``  | ``GeneratedTokens``|
| burstgpt    | CSV       | ``Timestamp`` (s)              | ``Request tokens`` | ``Response tokens``|
| mooncake    | JSONL     | ``timestamp`` (ms)             | ``input_length``   | ``output_length``  |
| vidur       | CSV       | ``arrived_at`` (s)             | ``num_prefill_tokens`` | ``num_decode_tokens`` |
| csv / jsonl | either    | ``timestamp`` (s or date-time) | ``input_tokens``   | ``output_tokens``  |

Mooncake (and generic) rows may carry ``hash_ids`` (prefix block hashes). Azure 2024 timestamps
carry a zone offset and some lack the fractional part; both parse. BurstGPT rows with 0 response
tokens are failed requests: counted in ``Trace.failed`` and left out. Files may be gzip-compressed
(detected by content, not name); Parquet files are read too. The fast path is pyarrow's
multithreaded CSV/JSON reader; when it rejects a file the file is re-scanned with the ``csv`` /
``json`` modules to name the first bad line and column.

Limits (module constants): a trace holds at most :data:`MAX_TRACE_ROWS` (100 million) rows, the
``trace synth`` maximum; more is an error, found while streaming, before the rows are kept. Its text (after
gzip) is at most :data:`MAX_TRACE_BYTES` (16 GiB): a plain file's size is checked before reading, a gzip
stream stops when its output passes the limit (a gzip bomb). A line is at most :data:`MAX_LINE_BYTES`
(1 MiB; a CSV field at most the ``csv`` module's 128 KiB), and arrivals span at most
:data:`MAX_TRACE_SPAN_S` (10 years): a longer span is nearly always epoch timestamps in ms, us or ns read as
seconds (``--columns time_unit=ns``). Trace files must be regular files (they are read more than once).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import os
import re
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt

from planner.domain import Trace
from planner.errors import InputError
from planner.io.output import atomic_binary, note_input
from planner.io.sources import open_input

Container = Literal["csv", "jsonl", "parquet"]
Progress = Callable[[int, int], None]  # (bytes read, total bytes)

READ_FORMATS = ("auto", "azure", "burstgpt", "mooncake", "vidur", "csv", "jsonl")
WRITE_FORMATS = ("azure", "azure-2024", "burstgpt", "mooncake", "vidur", "csv", "jsonl")
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
BLOCK_BYTES = 16 << 20
MAX_TRACE_ROWS = 100_000_000
MAX_TRACE_BYTES = 16 << 30
MAX_LINE_BYTES = 1 << 20
MAX_TRACE_SPAN_S = 10 * 365.25 * 86_400.0
_TZ = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)$")
AZURE_BASE = "2023-11-16T18:15:46"
AZURE_2024_BASE = "2024-05-10T00:00:00"


@dataclass(frozen=True, slots=True)
class Columns:
    time: str
    input: str
    output: str
    hash_ids: str | None = None
    time_unit: str = "s"

    def required(self) -> tuple[str, str, str]:
        return (self.time, self.input, self.output)


KNOWN: dict[str, Columns] = {
    "azure": Columns("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "burstgpt": Columns("Timestamp", "Request tokens", "Response tokens"),
    "mooncake": Columns("timestamp", "input_length", "output_length", "hash_ids", "ms"),
    "vidur": Columns("arrived_at", "num_prefill_tokens", "num_decode_tokens"),
    "csv": Columns("timestamp", "input_tokens", "output_tokens", "hash_ids"),
    "jsonl": Columns("timestamp", "input_tokens", "output_tokens", "hash_ids"),
}
CONTAINER: dict[str, Container] = {
    "azure": "csv",
    "burstgpt": "csv",
    "vidur": "csv",
    "csv": "csv",
    "mooncake": "jsonl",
    "jsonl": "jsonl",
}


@dataclass(frozen=True, slots=True)
class TraceFile:
    """What :func:`read_trace` read: the requests, the resolved format and the container."""

    trace: Trace
    format: str
    container: Container
    compressed: bool
    rows: int  # data rows read, failed ones included


# --- column mapping ---------------------------------------------------------------------------


def parse_columns(spec: str | None) -> dict[str, str]:
    """``time=A,input=B,output=C[,hash_ids=D][,time_unit=ms]`` → mapping (validated)."""
    if not spec:
        return {}
    out: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value or key not in ("time", "input", "output", "hash_ids", "time_unit"):
            raise InputError(
                f"--columns {spec!r}: expected time=NAME,input=NAME,output=NAME[,hash_ids=NAME][,time_unit=s|ms|us|ns]"
            )
        out[key] = value
    if "time_unit" in out and out["time_unit"] not in TIME_UNITS:
        raise InputError(f"--columns: time_unit={out['time_unit']}: use s, ms, us or ns")
    return out


def _with_mapping(base: Columns, mapping: dict[str, str]) -> Columns:
    return Columns(
        time=mapping.get("time", base.time),
        input=mapping.get("input", base.input),
        output=mapping.get("output", base.output),
        hash_ids=mapping.get("hash_ids", base.hash_ids),
        time_unit=mapping.get("time_unit", base.time_unit),
    )


def _resolve_names(cols: Columns, names: list[str], path: Path, fmt: str, line: str) -> Columns:
    """Match the format's column names to the file's (exact, else ignoring case and spaces)."""
    loose = {n.strip().lower(): n for n in names}

    def find(name: str | None, required: bool) -> str | None:
        if name is None:
            return None
        if name in names:
            return name
        hit = loose.get(name.strip().lower())
        if hit is None and required:
            raise InputError(
                f"{path}:{line}: missing column {name!r} for the {fmt} format (the file has: {', '.join(names) or 'none'})",
                hint="name the columns with --columns time=...,input=...,output=...",
            )
        return hit

    return Columns(
        time=find(cols.time, True) or "",
        input=find(cols.input, True) or "",
        output=find(cols.output, True) or "",
        hash_ids=find(cols.hash_ids, False),
        time_unit=cols.time_unit,
    )


# --- sniffing ---------------------------------------------------------------------------------


class _TooMuchText(Exception):
    """The text of a trace (after gzip) passed :data:`MAX_TRACE_BYTES`."""


class _Limited(io.RawIOBase):
    """A binary stream that raises :class:`_TooMuchText` once more than ``limit`` bytes were read from it."""

    def __init__(self, inner: Any, limit: int) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        self.count += n
        if self.count > self._limit:
            raise _TooMuchText
        buffer[:n] = data
        return n


def _too_much(path: Path) -> InputError:
    return InputError(
        f"{path}: more than {MAX_TRACE_BYTES / 2**30:g} GiB of trace text (after gzip); split the trace",
        hint="planner reads at most 100 million requests and 16 GiB of text per trace",
    )


def _too_many_rows(path: Path) -> InputError:
    return InputError(
        f"{path}: more than {MAX_TRACE_ROWS:,} requests; planner reads at most that many per trace",
        hint="profile a sample or a time window of the trace",
    )


def _line_too_long(path: Path, line: int) -> InputError:
    return InputError(f"{path}:{line}: line longer than {MAX_LINE_BYTES >> 20} MiB (a trace row is a few hundred bytes)")


@contextlib.contextmanager
def _open_binary(path: Path, compressed: bool) -> Iterator[Any]:
    """The trace's bytes (gunzipped), stopping with an InputError past :data:`MAX_TRACE_BYTES`."""
    with open_input(path, "a trace file", regular=True) as raw:
        if compressed:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield io.BufferedReader(_Limited(gz, MAX_TRACE_BYTES), buffer_size=1 << 16)
        else:
            yield raw


def _lines(path: Path, compressed: bool) -> Generator[str, None, None]:
    """The trace's lines as text (a leading byte-order mark dropped), each at most :data:`MAX_LINE_BYTES`."""
    try:
        with _open_binary(path, compressed) as fh:
            number = 0
            while True:
                raw = fh.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise _line_too_long(path, number)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(f"{path}:{number}: not UTF-8 text (byte {exc.start + 1} of the line)") from None
                yield text.removeprefix("\ufeff") if number == 1 else text
    except _TooMuchText:
        raise _too_much(path) from None


def _json_record(path: Path, line: int, text: str) -> Any:
    """One JSON Lines record; an InputError for bad JSON, nesting Python cannot follow or a huge integer."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{line}:{exc.colno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise InputError(f"{path}:{line}: JSON nested too deeply (arrays or objects inside each other)") from None
    except ValueError:  # an integer of more digits than int() converts (sys.get_int_max_str_digits())
        raise InputError(f"{path}:{line}: a number with too many digits") from None


def _sniff(path: Path) -> tuple[Container, bool, list[str], Any]:
    """Container, gzip flag, column names and the first data record (None if there is none)."""
    note_input(path)
    try:
        with open_input(path, "a trace file", regular=True) as fh:
            magic = fh.read(4)
            size = os.fstat(fh.fileno()).st_size
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a trace file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if size > MAX_TRACE_BYTES:
        raise _too_much(path)
    if magic == b"PAR1":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        try:
            schema = pq.read_schema(path)
        except Exception as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        return "parquet", False, list(schema.names), None
    compressed = magic[:2] == b"\x1f\x8b"
    try:
        with contextlib.closing(_lines(path, compressed)) as fh:
            first = ""
            number = 0
            for number, first in enumerate(fh, start=1):  # noqa: B007
                if first.strip():
                    break
            else:
                raise InputError(f"{path}: empty trace: the file has no header and no requests")
            if first.lstrip().startswith("{"):
                record = _json_record(path, number, first)
                if not isinstance(record, dict):
                    raise InputError(f"{path}:{number}: a JSON Lines trace has one JSON object per line")
                return "jsonl", compressed, list(record), record
            try:
                header = next(csv.reader([first]))
                data = None
                for at, line in enumerate(fh, start=number + 1):
                    number = at
                    if line.strip():
                        data = next(csv.reader([line]))
                        break
            except csv.Error as exc:
                raise InputError(f"{path}:{number}: malformed CSV ({exc})") from None
            return "csv", compressed, [h.strip() for h in header], data
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text trace (not UTF-8, not gzip, not Parquet)") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def detect_format(names: list[str], container: Container, path: Path) -> str:
    """The one known format whose columns the file has; an error when none or several match."""
    candidates = [f for f in KNOWN if container == "parquet" or CONTAINER[f] == container]
    loose = {n.strip().lower() for n in names}
    matches = [f for f in candidates if all(c.lower() in loose for c in KNOWN[f].required())]
    if container == "parquet" and matches == ["csv", "jsonl"]:
        matches = ["csv"]  # the generic formats have the same columns: one format in a Parquet file
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InputError(
            f"{path}:1: ambiguous trace format: the columns match {' and '.join(matches)}",
            hint=f"pick one with --trace-format {matches[0]}",
        )
    partial = [f for f in candidates if sum(c.lower() in loose for c in KNOWN[f].required()) == 2]
    if len(partial) == 1:
        f = partial[0]
        missing = next(c for c in KNOWN[f].required() if c.lower() not in loose)
        raise InputError(
            f"{path}:1: missing column {missing!r} for the {f} format (the file has: {', '.join(names)})",
            hint="name the columns with --columns time=...,input=...,output=...",
        )
    expected = "; ".join(f"{f} ({', '.join(KNOWN[f].required())})" for f in candidates)
    raise InputError(
        f"{path}:1: cannot tell the trace format from its columns ({', '.join(names) or 'none'}); expected one of: {expected}",
        hint="give --trace-format, and --columns time=...,input=...,output=... for other column names",
    )


# --- reading ----------------------------------------------------------------------------------


def read_trace(
    path: Path,
    fmt: str = "auto",
    columns: str | None = None,
    *,
    progress: Progress | None = None,
) -> TraceFile:
    """Read a trace file into arrays (see the module docstring for the formats)."""
    if fmt not in READ_FORMATS:
        raise InputError(f"--trace-format {fmt}: use one of {', '.join(READ_FORMATS)}")
    mapping = parse_columns(columns)
    try:
        return _read_trace(path, fmt, mapping, progress)
    except zlib.error as exc:  # a corrupt gzip stream (a bad header or CRC is an OSError, handled where read)
        raise InputError(f"{path}: corrupt gzip data ({exc})") from None


def _read_trace(path: Path, fmt: str, mapping: dict[str, str], progress: Progress | None) -> TraceFile:
    container, compressed, names, first = _sniff(path)
    if fmt == "auto":
        if mapping and {"time", "input", "output"} <= mapping.keys():
            fmt = "jsonl" if container == "jsonl" else "csv"
        else:
            fmt = detect_format(names, container, path)
    elif container != "parquet" and CONTAINER[fmt] != container:
        kind = "JSON Lines" if container == "jsonl" else "CSV"
        raise InputError(f"{path}: --trace-format {fmt} expects {CONTAINER[fmt].upper()}, but the file is {kind}")
    cols = _resolve_names(_with_mapping(KNOWN[fmt], mapping), names, path, fmt, "1")
    if container == "csv":
        raw = _read_csv(path, compressed, cols, first, progress)
    elif container == "jsonl":
        raw = _read_jsonl(path, compressed, cols, first, progress)
    else:
        raw = _read_parquet(path, cols)
    return _finish(path, fmt, container, compressed, cols, raw)


@dataclass
class _Raw:
    time: npt.NDArray[Any]  # float64 (numeric) or int64 ns since the epoch (date-time)
    is_datetime: bool
    inp: npt.NDArray[np.float64]
    out: npt.NDArray[np.float64]
    time_null: npt.NDArray[np.bool_] | None
    inp_null: npt.NDArray[np.bool_] | None
    out_null: npt.NDArray[np.bool_] | None
    hash_values: npt.NDArray[np.int64] | None = None
    hash_offsets: npt.NDArray[np.int64] | None = None
    line_of_row: Callable[[int], str] | None = None


def _time_type(sample: Any) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    text = str(sample).strip() if sample is not None else ""
    try:
        float(text)
        return pa.float64()
    except ValueError:
        pass
    return pa.timestamp("ns", "UTC") if _TZ.search(text) else pa.timestamp("ns")


def _null_mask(arr: Any) -> npt.NDArray[np.bool_] | None:
    if arr.null_count == 0:
        return None
    mask: npt.NDArray[np.bool_] = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return mask


def _to_numpy(chunks: list[Any], dtype: Any) -> npt.NDArray[Any]:
    import pyarrow as pa  # type: ignore[import-untyped]

    if not chunks:
        return np.empty(0, dtype=dtype)
    arr = pa.chunked_array(chunks)
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.int64())
    with np.errstate(invalid="ignore"):  # nulls come back as NaN; _finish reports them by line
        return np.asarray(arr.to_numpy(), dtype=dtype)


def _read_csv(path: Path, compressed: bool, cols: Columns, first: Any, progress: Progress | None) -> _Raw:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    header_names, header_line = _csv_header(path, compressed)
    ttype = pa.float64()
    if first is not None and cols.time in header_names:
        idx = header_names.index(cols.time)
        ttype = _time_type(first[idx] if idx < len(first) else None)
    wanted = [cols.time, cols.input, cols.output]
    convert = pacsv.ConvertOptions(
        include_columns=wanted,
        column_types={cols.time: ttype, cols.input: pa.float64(), cols.output: pa.float64()},
    )
    total = path.stat().st_size
    parts: dict[str, list[Any]] = {c: [] for c in wanted}
    rows = 0
    try:
        raw_file = pa.OSFile(str(path), "rb")
        with contextlib.closing(raw_file):
            stream = _Limited(pa.CompressedInputStream(raw_file, "gzip"), MAX_TRACE_BYTES) if compressed else raw_file
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, column_names=header_names, skip_rows=header_line),
                parse_options=pacsv.ParseOptions(newlines_in_values=False),
                convert_options=convert,
            )
            for batch in reader:
                rows += batch.num_rows
                if rows > MAX_TRACE_ROWS:
                    raise _too_many_rows(path)
                for c in wanted:
                    parts[c].append(batch.column(c))
                if progress is not None:
                    progress(raw_file.tell(), total)
    except _TooMuchText:
        raise _too_much(path) from None
    except (pa.ArrowException, OSError, EOFError) as exc:
        raise _locate_csv_error(path, compressed, header_names, cols, ttype, exc) from None
    is_dt = pa.types.is_timestamp(ttype)
    time_chunks, inp_chunks, out_chunks = parts[cols.time], parts[cols.input], parts[cols.output]

    def nulls(chunks: list[Any]) -> npt.NDArray[np.bool_] | None:
        if not chunks or all(c.null_count == 0 for c in chunks):
            return None
        return _null_mask(pa.chunked_array(chunks))

    return _Raw(
        time=_to_numpy(time_chunks, np.int64 if is_dt else np.float64),
        is_datetime=is_dt,
        inp=_to_numpy(inp_chunks, np.float64),
        out=_to_numpy(out_chunks, np.float64),
        time_null=nulls(time_chunks),
        inp_null=nulls(inp_chunks),
        out_null=nulls(out_chunks),
        line_of_row=lambda row: _csv_line_of_row(path, compressed, row),
    )


def _csv_header(path: Path, compressed: bool) -> tuple[list[str], int]:
    """The header's column names and its line number (blank lines may come before it)."""
    with contextlib.closing(_lines(path, compressed)) as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    return [h.strip() for h in next(csv.reader([line]))], number
                except csv.Error as exc:
                    raise InputError(f"{path}:{number}: malformed CSV ({exc})") from None
    return [], 1


def _csv_rows(path: Path, compressed: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-empty data row."""
    with contextlib.closing(_lines(path, compressed)) as fh:
        reader = csv.reader(fh)
        seen_header = False
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
            if not fields or all(not f.strip() for f in fields):
                continue
            if not seen_header:
                seen_header = True
                continue
            yield reader.line_num, fields


def _csv_line_of_row(path: Path, compressed: bool, row: int) -> str:
    for i, (line, _) in enumerate(_csv_rows(path, compressed)):
        if i == row:
            return str(line)
    return "?"


def _parse_time_cell(text: str, is_datetime: bool) -> bool:
    text = text.strip()
    if not text:
        return False
    if not is_datetime:
        try:
            return math.isfinite(float(text))
        except ValueError:
            return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _locate_csv_error(path: Path, compressed: bool, header: list[str], cols: Columns, ttype: Any, exc: Exception) -> InputError:
    """Re-scan a file the fast reader rejected; name the first bad line and column."""
    import pyarrow as pa  # type: ignore[import-untyped]

    is_dt = pa.types.is_timestamp(ttype)
    tz_aware = is_dt and getattr(ttype, "tz", None) is not None
    index = {c: header.index(c) for c in (cols.time, cols.input, cols.output)}
    try:
        for line, fields in _csv_rows(path, compressed):
            if len(fields) != len(header):
                return InputError(f"{path}:{line}: expected {len(header)} fields (the header's), found {len(fields)}")
            cell = fields[index[cols.time]]
            if not _parse_time_cell(cell, is_dt):
                what = (
                    "a date-time" if is_dt else "a number of seconds" if cols.time_unit == "s" else f"a number ({cols.time_unit})"
                )
                return InputError(f"{path}:{line}: column {cols.time!r}: bad timestamp {cell!r} (expected {what})")
            if is_dt and bool(_TZ.search(cell.strip())) != tz_aware:
                first = "has a" if tz_aware else "has no"
                return InputError(
                    f"{path}:{line}: column {cols.time!r}: timestamp {cell!r} mixes zones (the first row {first} zone offset)"
                )
            for c in (cols.input, cols.output):
                cell = fields[index[c]]
                try:
                    float(cell)
                except ValueError:
                    return InputError(f"{path}:{line}: column {c!r}: {cell.strip()!r} is not a token count")
    except csv.Error as err:
        return InputError(f"{path}: malformed CSV ({err})")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        return InputError(f"{path}: cannot read: {err}")
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(f"{path}: malformed CSV ({message})")


def _read_jsonl(path: Path, compressed: bool, cols: Columns, first: Any, progress: Progress | None) -> _Raw:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.json as pajson  # type: ignore[import-untyped]

    ttype = _time_type(first.get(cols.time)) if isinstance(first, dict) else pa.float64()
    fields = [pa.field(cols.time, ttype), pa.field(cols.input, pa.float64()), pa.field(cols.output, pa.float64())]
    if cols.hash_ids is not None:
        fields.append(pa.field(cols.hash_ids, pa.list_(pa.int64())))
    schema = pa.schema(fields)
    batches = []
    rows = 0
    try:
        raw_file = pa.OSFile(str(path), "rb")
        with contextlib.closing(raw_file):
            stream = _Limited(pa.CompressedInputStream(raw_file, "gzip"), MAX_TRACE_BYTES) if compressed else raw_file
            reader = pajson.open_json(
                stream,
                read_options=pajson.ReadOptions(block_size=BLOCK_BYTES),
                parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
            for batch in reader:
                rows += batch.num_rows
                if rows > MAX_TRACE_ROWS:
                    raise _too_many_rows(path)
                batches.append(batch)
        table = pa.Table.from_batches(batches, schema=schema)
    except _TooMuchText:
        raise _too_much(path) from None
    except (pa.ArrowException, OSError, EOFError) as exc:
        raise _locate_jsonl_error(path, compressed, cols, pa.types.is_timestamp(ttype), exc) from None
    if progress is not None:
        total = path.stat().st_size
        progress(total, total)
    is_dt = pa.types.is_timestamp(ttype)
    values = offsets = None
    if cols.hash_ids is not None:
        lists = table.column(cols.hash_ids).combine_chunks()
        if lists.null_count:
            lists = lists.fill_null(pa.scalar([], pa.list_(pa.int64())))
        values, offsets = _hash_arrays(lists.cast(pa.list_(pa.int64())))
    t, i, o = table.column(cols.time), table.column(cols.input), table.column(cols.output)
    return _raw(t, i, o, is_dt, values, offsets, lambda row: _jsonl_line_of_row(path, compressed, row))


def _jsonl_rows(path: Path, compressed: bool) -> Iterator[tuple[int, str]]:
    with contextlib.closing(_lines(path, compressed)) as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.strip():
                yield line_no, line


def _jsonl_line_of_row(path: Path, compressed: bool, row: int) -> str:
    for i, (line, _) in enumerate(_jsonl_rows(path, compressed)):
        if i == row:
            return str(line)
    return "?"


def _locate_jsonl_error(path: Path, compressed: bool, cols: Columns, is_dt: bool, exc: Exception) -> InputError:
    try:
        for line, text in _jsonl_rows(path, compressed):
            try:
                record = _json_record(path, line, text)
            except InputError as err:
                return err
            if not isinstance(record, dict):
                return InputError(f"{path}:{line}: expected a JSON object")
            for key in (cols.time, cols.input, cols.output):
                value = record.get(key)
                if key == cols.time:
                    ok = (isinstance(value, str) and is_dt and _parse_time_cell(value, True)) or (
                        not is_dt and isinstance(value, (int, float)) and not isinstance(value, bool)
                    )
                    if value is not None and not ok:
                        return InputError(f"{path}:{line}: field {key!r}: bad timestamp {value!r}")
                elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    return InputError(f"{path}:{line}: field {key!r}: {value!r} is not a token count")
            if cols.hash_ids is not None:
                ids = record.get(cols.hash_ids)
                if ids is not None and not (isinstance(ids, list) and all(isinstance(h, int) for h in ids)):
                    return InputError(f"{path}:{line}: field {cols.hash_ids!r}: expected a list of integers")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        return InputError(f"{path}: cannot read: {err}")
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(f"{path}: malformed JSON Lines ({message})")


def _read_parquet(path: Path, cols: Columns) -> _Raw:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    wanted = [cols.time, cols.input, cols.output] + ([cols.hash_ids] if cols.hash_ids else [])
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read Parquet ({_first_line(exc)})") from None
    if rows > MAX_TRACE_ROWS:
        raise _too_many_rows(path)
    try:
        table = pq.read_table(path, columns=wanted)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read Parquet ({_first_line(exc)})") from None
    t = table.column(cols.time)
    is_dt = pa.types.is_timestamp(t.type)
    if not is_dt and not (pa.types.is_integer(t.type) or pa.types.is_floating(t.type)):
        raise InputError(f"{path}: column {cols.time!r} has type {t.type}; expected a timestamp or a number")
    if is_dt:
        try:
            t = t.cast(pa.timestamp("ns", t.type.tz))
        except pa.ArrowException:
            raise InputError(
                f"{path}: column {cols.time!r}: a timestamp outside the years 1678-2262 (nanoseconds since 1970 in 64 bits)"
            ) from None

    def numeric(name: str) -> Any:
        col = table.column(name)
        try:
            return col.cast(pa.float64())
        except pa.ArrowException:
            raise InputError(f"{path}: column {name!r} has type {col.type}; expected token counts") from None

    i, o = numeric(cols.input), numeric(cols.output)
    values = offsets = None
    if cols.hash_ids is not None:
        ids = table.column(cols.hash_ids).combine_chunks()
        if not (pa.types.is_list(ids.type) or pa.types.is_large_list(ids.type)) or not (
            pa.types.is_integer(ids.type.value_type) or pa.types.is_null(ids.type.value_type)
        ):
            raise InputError(f"{path}: column {cols.hash_ids!r} has type {ids.type}; expected a list of integers")
        try:
            values, offsets = _hash_arrays(ids.cast(pa.list_(pa.int64())))
        except pa.ArrowException as exc:
            raise InputError(f"{path}: column {cols.hash_ids!r}: {_first_line(exc)}") from None
    return _raw(t, i, o, is_dt, values, offsets, lambda row: f"row {row + 1}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _hash_arrays(lists: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A list<int64> column as (all values concatenated, offsets from 0); null ids read as -1."""
    offsets = np.asarray(lists.offsets.to_numpy(), dtype=np.int64)
    values = np.asarray(lists.flatten().fill_null(-1).to_numpy(), dtype=np.int64)
    return values, offsets - offsets[0]


def _raw(t: Any, i: Any, o: Any, is_dt: bool, values: Any, offsets: Any, line_of_row: Callable[[int], str]) -> _Raw:
    """Time, input and output columns (pyarrow chunked arrays) as the reader's numpy arrays."""
    return _Raw(
        time=_to_numpy(t.chunks, np.int64 if is_dt else np.float64),
        is_datetime=is_dt,
        inp=_to_numpy(i.chunks, np.float64),
        out=_to_numpy(o.chunks, np.float64),
        time_null=_null_mask(t),
        inp_null=_null_mask(i),
        out_null=_null_mask(o),
        hash_values=values,
        hash_offsets=offsets,
        line_of_row=line_of_row,
    )


def _finish(path: Path, fmt: str, container: Container, compressed: bool, cols: Columns, raw: _Raw) -> TraceFile:
    n = int(raw.inp.size)
    if n == 0:
        raise InputError(f"{path}: empty trace: a header but no requests")

    def where(row: int) -> str:
        loc = raw.line_of_row(row) if raw.line_of_row is not None else f"row {row + 1}"
        return f"{path}:{loc}" if not loc.startswith("row") else f"{path}: {loc}"

    def fail(mask: npt.NDArray[np.bool_], column: str, what: str) -> None:
        bad = np.flatnonzero(mask)
        if bad.size:
            more = f" ({bad.size - 1} more row(s) like it)" if bad.size > 1 else ""
            raise InputError(f"{where(int(bad[0]))}: column {column!r}: {what}{more}")

    for mask, column in ((raw.time_null, cols.time), (raw.inp_null, cols.input), (raw.out_null, cols.output)):
        if mask is not None:
            fail(mask, column, "missing value")
    if not raw.is_datetime:
        fail(~np.isfinite(raw.time), cols.time, "bad timestamp (not a finite number)")
    for arr, column in ((raw.inp, cols.input), (raw.out, cols.output)):
        if not bool(np.all((arr >= 0) & (arr == np.floor(arr)) & (arr < 2**53))):  # one pass when all is well
            fail(~np.isfinite(arr), column, "not a finite token count")
            fail(arr < 0, column, "negative token count")
            fail(arr != np.floor(arr), column, "token count is not a whole number")
            fail(arr >= 2**53, column, "token count too large")
    inp = raw.inp.astype(np.int64)
    out = raw.out.astype(np.int64)
    start: str | None = None
    if raw.is_datetime:
        t0 = int(raw.time.min())
        arrival = (raw.time - t0).astype(np.float64) / 1e9
        start = str(np.datetime64(t0, "ns"))
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            tsec = raw.time * TIME_UNITS[cols.time_unit]
            arrival = tsec - float(tsec.min())
        fail(~np.isfinite(arrival), cols.time, "bad timestamp (its distance from the first is not a finite number)")
    span = float(arrival.max())
    if span > MAX_TRACE_SPAN_S:
        unit = "date-times" if raw.is_datetime else f"timestamps read in {cols.time_unit}"
        raise InputError(
            f"{path}: column {cols.time!r}: the arrivals span {span:.3g} s ({span / 86_400 / 365.25:.3g} years; {unit}); "
            f"a trace spans at most {MAX_TRACE_SPAN_S / 86_400 / 365.25:.0f} years",
            hint="epoch timestamps in ms, us or ns read as seconds are the usual cause: give the unit with "
            "--columns time_unit=ns (or ms, us)",
        )
    values, offsets = raw.hash_values, raw.hash_offsets
    failed = 0
    if fmt == "burstgpt":
        ok = out > 0
        failed = int(n - ok.sum())
        if failed == n:
            raise InputError(f"{path}: all {n} requests failed (0 response tokens); nothing to profile")
        if failed:
            arrival, inp, out = arrival[ok], inp[ok], out[ok]
    trace = Trace(
        arrival_s=arrival,
        input_tokens=inp,
        output_tokens=out,
        hash_values=values,
        hash_offsets=offsets,
        failed=failed,
        start=start,
    )
    return TraceFile(trace=trace, format=fmt, container=container, compressed=compressed, rows=n)


# --- writing ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic_binary(path: Path) -> Iterator[Any]:
    """A binary file at ``path`` that appears whole or not at all (gzip when the name ends in .gz)."""
    with atomic_binary(path) as raw:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                yield gz
        else:
            yield raw


def _digits(mat: npt.NDArray[np.uint8], col: int, values: npt.NDArray[np.int64], width: int) -> None:
    v = values.copy()
    for i in range(width - 1, -1, -1):
        mat[:, col + i] = 48 + (v % 10)
        v //= 10


def format_timestamps(ns: npt.NDArray[np.int64], frac_digits: int = 7) -> npt.NDArray[np.bytes_]:
    """``YYYY-MM-DD HH:MM:SS[.f…]`` for nanoseconds since the epoch, vectorized (fixed width)."""
    sec = ns // 1_000_000_000
    frac = (ns % 1_000_000_000) // 10 ** (9 - frac_digits)
    days = (sec // 86_400).astype("M8[D]")
    sod = sec % 86_400
    years = days.astype("M8[Y]")
    months = days.astype("M8[M]")
    width = 19 + (1 + frac_digits if frac_digits else 0)
    mat = np.empty((ns.size, width), dtype=np.uint8)
    _digits(mat, 0, years.astype(np.int64) + 1970, 4)
    _digits(mat, 5, (months - years.astype("M8[M]")).astype(np.int64) + 1, 2)
    _digits(mat, 8, (days - months.astype("M8[D]")).astype(np.int64) + 1, 2)
    _digits(mat, 11, sod // 3600, 2)
    _digits(mat, 14, sod // 60 % 60, 2)
    _digits(mat, 17, sod % 60, 2)
    mat[:, 4] = mat[:, 7] = ord("-")
    mat[:, 10] = ord(" ")
    mat[:, 13] = mat[:, 16] = ord(":")
    if frac_digits:
        mat[:, 19] = ord(".")
        _digits(mat, 20, frac, frac_digits)
    return mat.view(f"S{width}").ravel()


def _write_arrow_csv(fh: IO[bytes], header: list[str], columns: list[Any], chunk: int = 1_000_000) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    fh.write((",".join(header) + "\n").encode())
    n = len(columns[0])
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    for lo in range(0, n, chunk):
        table = pa.table({f"c{j}": col[lo : lo + chunk] for j, col in enumerate(columns)})
        pacsv.write_csv(table, fh, write_options=options)  # type: ignore[arg-type]


def _seconds(t: npt.NDArray[np.float64]) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa.array(np.round(t, 6))


def write_trace(path: Path, trace: Trace, fmt: str) -> None:
    """Write ``trace`` in ``fmt`` (one of :data:`WRITE_FORMATS`), atomically; gzip if ``path`` ends in .gz."""
    import pyarrow as pa  # type: ignore[import-untyped]

    if fmt not in WRITE_FORMATS:
        raise InputError(f"--format-out {fmt}: use one of {', '.join(WRITE_FORMATS)}")
    t, inp, out = trace.arrival_s, trace.input_tokens, trace.output_tokens
    with _atomic_binary(path) as fh:
        if fmt in ("azure", "azure-2024"):
            base = np.datetime64(AZURE_BASE if fmt == "azure" else AZURE_2024_BASE, "ns").astype(np.int64)
            if fmt == "azure":
                ns = base + np.rint(t * 1e7).astype(np.int64) * 100
                stamps = pa.array(format_timestamps(ns, 7), type=pa.binary(27)).cast(pa.string())
            else:
                ns = base + np.rint(t * 1e6).astype(np.int64) * 1000
                full = format_timestamps(ns, 6).astype(object)
                whole = (ns % 1_000_000_000) == 0  # the 2024 files drop the fraction when it is zero
                full[whole] = [s[:19] for s in full[whole]]
                stamps = pa.array([s.decode() + "+00:00" for s in full], type=pa.string())
            _write_arrow_csv(fh, ["TIMESTAMP", "ContextTokens", "GeneratedTokens"], [stamps, pa.array(inp), pa.array(out)])
        elif fmt == "burstgpt":
            n = t.size
            models = pa.array(np.where(np.arange(n) % 5 == 4, "GPT-4", "ChatGPT"))
            logs = pa.array(np.where(np.arange(n) % 3 == 2, "API log", "Conversation log"))
            _write_arrow_csv(
                fh,
                ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"],
                [_seconds(t), models, pa.array(inp), pa.array(out), pa.array(inp + out), logs],
            )
        elif fmt == "vidur":
            _write_arrow_csv(
                fh, ["arrived_at", "num_prefill_tokens", "num_decode_tokens"], [_seconds(t), pa.array(inp), pa.array(out)]
            )
        elif fmt == "csv":
            _write_arrow_csv(fh, ["timestamp", "input_tokens", "output_tokens"], [_seconds(t), pa.array(inp), pa.array(out)])
        else:
            values, offsets = trace.hash_values, trace.hash_offsets
            mooncake = fmt == "mooncake"
            keys = ("timestamp", "input_length", "output_length") if mooncake else ("timestamp", "input_tokens", "output_tokens")
            times = np.rint(t * 1000).astype(np.int64).tolist() if mooncake else np.round(t, 6).tolist()
            ins, outs = inp.tolist(), out.tolist()
            buf = io.StringIO()
            for i in range(t.size):
                rec: dict[str, Any] = {keys[0]: times[i], keys[1]: ins[i], keys[2]: outs[i]}
                if values is not None and offsets is not None:
                    rec["hash_ids"] = values[offsets[i] : offsets[i + 1]].tolist()
                buf.write(json.dumps(rec, separators=(", ", ": ")) + "\n")
                if buf.tell() > BLOCK_BYTES:
                    fh.write(buf.getvalue().encode())
                    buf = io.StringIO()
            fh.write(buf.getvalue().encode())
