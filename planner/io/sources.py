"""Each input read once: :func:`read_source` returns a file's :class:`~planner.domain.InputSource` (text and SHA-256),
and inside :func:`reading_once` (every CLI run, every library call of :mod:`planner.api` that reads files) a second
request for the same file returns the first read, so a proposal, its workload and a calibration overlay are read
from disk one time each, and the hash a result reports is of the bytes that were parsed."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from planner.domain import InputSource
from planner.errors import InputError
from planner.io.output import note_input

MAX_DOCUMENT_BYTES = 16 * 2**20  # no planner document comes near this; larger is a mistake

_cache: dict[Path, InputSource] | None = None
reads = 0  # files read from disk by read_source (tests count them)


@contextlib.contextmanager
def reading_once() -> Iterator[None]:
    """Inside the block, :func:`read_source` reads each file from disk once (nested blocks share the outer one)."""
    global _cache
    if _cache is not None:
        yield
        return
    _cache = {}
    try:
        yield
    finally:
        _cache = None


def _key(path: Path) -> Path | None:
    try:
        return Path(path).resolve()
    except (OSError, ValueError, RuntimeError):
        return None


def read_source(path: Path, kind: str = "YAML") -> InputSource:
    """Read a UTF-8 text file with one clear error for missing, unreadable, oversized or binary files."""
    global reads
    note_input(path)
    key = _key(path) if _cache is not None else None
    if key is not None and _cache is not None and key in _cache:
        cached = _cache[key]
        return cached if cached.path == str(path) else InputSource(str(path), cached.text, cached.sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    reads += 1
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{path}: file larger than {MAX_DOCUMENT_BYTES // 2**20} MiB")
    if b"\x00" in data:
        raise InputError(f"{path}: binary file, expected {kind} text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    source = InputSource(str(path), text, hashlib.sha256(data).hexdigest())
    if key is not None and _cache is not None:
        _cache[key] = source
    return source
