"""Write results: stdout, or a file written atomically (temporary file, then rename)."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from planner.errors import InputError

# Every file read while a command runs (resolved), so that no output of the command replaces one:
# the main input, and also a proposal's workload, a calibration overlay, a --catalog-dir file, a
# trace. None outside :func:`recording_inputs` (library use records nothing).
_inputs_read: set[Path] | None = None


@contextlib.contextmanager
def recording_inputs() -> Iterator[None]:
    """Record the files read inside the block (:func:`note_input`); outputs written inside it refuse them."""
    global _inputs_read
    outer = _inputs_read
    _inputs_read = set()
    try:
        yield
    finally:
        _inputs_read = outer


def note_input(path: Path) -> None:
    """Record that ``path`` was read as an input of the running command."""
    if _inputs_read is None:
        return
    with contextlib.suppress(OSError, ValueError, RuntimeError):
        _inputs_read.add(Path(path).resolve())


def inputs_read() -> frozenset[Path]:
    """The files :func:`note_input` recorded in the current :func:`recording_inputs` block."""
    return frozenset(_inputs_read or ())


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and a.resolve() == b
    except (OSError, ValueError, RuntimeError):
        return False


def check_output(path: Path, *, inputs: Iterable[Path] = (), replaces: Path | None = None) -> Path:
    """Refuse ``path`` as an output (one :class:`InputError`) unless writing it is safe: it is none of
    ``inputs`` nor any file the running command read (:func:`note_input`), except ``replaces`` (an
    input this write is meant to update, e.g. ``--merge-into`` the ``--write`` file), and it is
    absent or a regular file (a device node, FIFO or socket would be replaced by a file). Returns
    the resolved target. Commands with several outputs call it for each before writing the first."""
    try:
        st = os.stat(path)  # follows symlinks: what the write would land on
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot write: {getattr(exc, 'strerror', None) or exc}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file (a device, FIFO or socket): refusing to replace it")
    target = path.resolve()
    spared = replaces.resolve() if replaces is not None else None
    for source in (*inputs, *inputs_read()):
        if _same_file(source, target) and target != spared:
            raise InputError(f"{path}: refusing to overwrite an input file")
    return target


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread by :func:`terminate_as_interrupt`'s handler. A
    KeyboardInterrupt, so that everything that cleans up after Ctrl-C (the temporary file of an
    atomic write, a sweep's worker processes) cleans up after these too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's code for death by this signal: 128 + its number (143 for SIGTERM, 129 for SIGHUP)."""
        return 128 + self.signum


TERMINATING_SIGNALS: tuple[signal.Signals, ...] = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None
)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt) in the
    main thread instead of killing the process at once, so that no temporary file is left behind
    and no output is half written. A signal the process inherited as ignored (``nohup``) stays
    ignored; the previous handlers come back on exit. Outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved: list[tuple[signal.Signals, Any]] = []  # handler: a callable, SIG_DFL or None
    try:
        for sig in TERMINATING_SIGNALS:
            old = signal.getsignal(sig)
            if old == signal.SIG_IGN:
                continue
            signal.signal(sig, _raise_terminated)
            saved.append((sig, old))
        yield
    finally:
        for sig, old in reversed(saved):
            signal.signal(sig, old)


@contextlib.contextmanager
def atomic_binary(path: Path, *, inputs: Iterable[Path] = (), replaces: Path | None = None) -> Iterator[BinaryIO]:
    """A binary file at ``path`` that readers see whole or not at all (temporary file, then rename),
    as readable as any file the umask allows. Refuses what :func:`check_output` refuses (any input of
    the command, anything that is not a regular file); creates missing parent directories; removes
    the temporary file on any error or interrupt (SIGTERM and SIGHUP too, under
    :func:`terminate_as_interrupt`). A file it replaces keeps its permission bits (0600 stays 0600)."""
    target = check_output(path, inputs=inputs, replaces=replaces)
    if target.is_dir():
        raise InputError(f"{path}: is a directory")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)  # an existing file keeps its mode
    except OSError:
        mode = 0o666 & ~_umask()  # a new result file is as readable as any other
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        os.chmod(tmp, mode)  # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str, *, inputs: Iterable[Path] = (), replaces: Path | None = None) -> None:
    """Write UTF-8 ``text`` (``\\n`` line endings) to ``path`` atomically (see :func:`atomic_binary`)."""
    with atomic_binary(path, inputs=inputs, replaces=replaces) as fh:
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


def yaml_text(doc: object) -> str:
    """A result document as YAML (``--format yaml``), dumped the one way every planner YAML is."""
    from planner.io.yamlio import dumps  # lazily: yamlio reads through planner.io.sources, which imports this module

    return dumps(doc)
