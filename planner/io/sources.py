"""Each input read once: :func:`read_source` returns a file's :class:`~planner.domain.InputSource` (text and SHA-256),
and inside :func:`reading_once` (every CLI run, every library call of :mod:`planner.api` that reads files) a second
request for the same file returns the first read, so a proposal, its workload and a calibration overlay are read
from disk one time each, and the hash a result reports is of the bytes that were parsed."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from planner.domain import InputSource
from planner.errors import InputError
from planner.io.output import note_input

MAX_DOCUMENT_BYTES = 16 * 2**20  # no planner document comes near this; larger is a mistake
MAX_PATH_BYTES = 4096  # PATH_MAX: a path named inside a document (workload:, calibration:) is at most this long
MAX_NAME_BYTES = 255  # NAME_MAX: each component of such a path

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


def shown(path: Path | str) -> str:
    """``path`` for an error line: as given, or escaped (``repr``) when it holds a NUL, a newline or another
    character that cannot be printed."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def check_path_text(text: str, where: str) -> None:
    """An InputError (naming ``where``) for a path named inside a document that no file can have: a NUL
    byte, a character the file system cannot encode (a lone surrogate), more than :data:`MAX_PATH_BYTES`
    bytes or a component of more than :data:`MAX_NAME_BYTES`."""
    if "\x00" in text:
        raise InputError(f"{where}: {shown(text)}: a path cannot contain a NUL byte")
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError as exc:
        raise InputError(f"{where}: {shown(text)}: character {exc.start + 1} cannot be in a file name") from None
    if len(raw) > MAX_PATH_BYTES:
        raise InputError(f"{where}: path longer than {MAX_PATH_BYTES} bytes")
    longest = max((len(part) for part in raw.split(b"/")), default=0)
    if longest > MAX_NAME_BYTES:
        raise InputError(f"{where}: a path component longer than {MAX_NAME_BYTES} bytes ({longest})")


def open_input(path: Path, what: str = "a file", *, regular: bool = False) -> BinaryIO:
    """``path`` opened for binary reading, with one clear InputError for a missing file, a broken
    symbolic link, a directory, an unreadable file or an impossible name. It never blocks: a FIFO with
    no writer reads as empty. ``regular``: anything but a regular file (a FIFO, a device) is an error."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{shown(path)}: is a directory, expected {what}")
        if regular and not stat.S_ISREG(st.st_mode):
            raise InputError(f"{shown(path)}: not a regular file (a FIFO, socket or device), expected {what}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        if os.path.lexists(path):
            raise InputError(f"{shown(path)}: broken symbolic link (its target does not exist)") from None
        raise InputError(f"{shown(path)}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{shown(path)}: is a directory, expected {what}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{shown(path)}: too many levels of symbolic links (a loop?)") from None
        raise InputError(f"{shown(path)}: cannot read: {exc.strerror}") from None
    except (ValueError, UnicodeEncodeError):  # a NUL byte, a lone surrogate
        raise InputError(f"{shown(path)}: not a valid file name") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # opened without waiting for a writer; now read normally
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(path: Path, limit: int, what: str = "a file") -> bytes:
    """All of ``path``'s bytes, refusing more than ``limit`` without reading them: a regular file's size is
    checked before the read; anything else (a device such as /dev/zero, a FIFO) is read to ``limit`` + 1
    bytes at most."""
    with open_input(path, what) as fh:
        st = os.fstat(fh.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise _too_large(path, limit)
        try:
            data = fh.read(limit + 1)
        except IsADirectoryError:
            raise InputError(f"{shown(path)}: is a directory, expected {what}") from None
        except OSError as exc:
            raise InputError(f"{shown(path)}: cannot read: {exc.strerror}") from None
    if len(data) > limit:
        raise _too_large(path, limit)
    return data


def _too_large(path: Path, limit: int) -> InputError:
    size = f"{limit // 2**20} MiB" if limit >= 2**20 and limit % 2**20 == 0 else f"{limit:,} bytes"
    return InputError(f"{shown(path)}: file larger than {size}")


def read_source(path: Path, kind: str = "YAML") -> InputSource:
    """Read a UTF-8 text file with one clear error for missing, unreadable, oversized or binary files.

    The size limit (:data:`MAX_DOCUMENT_BYTES`, 16 MiB) is checked before the file is read (:func:`read_limited`);
    a leading UTF-8 byte-order mark is dropped from the text (the hash is of the bytes as read)."""
    global reads
    note_input(path)
    key = _key(path) if _cache is not None else None
    if key is not None and _cache is not None and key in _cache:
        cached = _cache[key]
        return cached if cached.path == str(path) else InputSource(str(path), cached.text, cached.sha256)
    data = read_limited(path, MAX_DOCUMENT_BYTES, "a file")
    reads += 1
    if b"\x00" in data:
        raise InputError(f"{path}: binary file, expected {kind} text")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    source = InputSource(str(path), text, hashlib.sha256(data).hexdigest())
    if key is not None and _cache is not None:
        _cache[key] = source
    return source
