"""Write results: stdout, or a file written atomically (temporary file, then rename)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from planner.errors import InputError


def write_text_atomic(path: Path, text: str, *, inputs: Iterable[Path] = ()) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the whole new one, never a part.
    Refuses to overwrite any of ``inputs``; creates missing parent directories."""
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
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
