"""Write results: stdout, or a file written atomically (temporary file, then rename)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from planner.errors import InputError


@contextlib.contextmanager
def atomic_binary(path: Path, *, inputs: Iterable[Path] = ()) -> Iterator[BinaryIO]:
    """A binary file at ``path`` that readers see whole or not at all (temporary file, then rename),
    as readable as any file the umask allows. Refuses to overwrite any of ``inputs``; creates
    missing parent directories; removes the temporary file on any error or interrupt."""
    target = path.resolve()
    for source in inputs:
        try:
            if source.exists() and source.resolve() == target:
                raise InputError(f"{path}: refusing to overwrite an input file")
        except OSError:
            continue
    if target.is_dir():
        raise InputError(f"{path}: is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a result file is as readable as any other
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str, *, inputs: Iterable[Path] = ()) -> None:
    """Write UTF-8 ``text`` (``\\n`` line endings) to ``path`` atomically (see :func:`atomic_binary`)."""
    with atomic_binary(path, inputs=inputs) as fh:
        fh.write(text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def emit(text: str, output: Path | None, *, inputs: Iterable[Path] = ()) -> None:
    """Result text to ``output`` (atomically) or to stdout."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_text_atomic(output, text, inputs=inputs)
