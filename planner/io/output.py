"""Write results: stdout, or a file written atomically (temporary file, then rename)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
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


def check_output_dir(path: Path, *, inputs: Iterable[Path] = ()) -> Path:
    """Refuse ``path`` as an output directory (one :class:`InputError`) unless a new one can be put there safely:
    it is absent (its nearest existing parent is a writable directory), or it is an empty directory. A directory
    that holds anything is refused, so that nothing of it is replaced or mixed with an earlier output; a file, a
    device or an input of the running command is refused too. Returns the resolved target."""
    try:
        target = path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"{path}: cannot write: {getattr(exc, 'strerror', None) or exc}") from None
    for source in (*inputs, *inputs_read()):
        if _same_file(source, target):
            raise InputError(f"{path}: refusing to overwrite an input file")
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: exists and is not a directory")
        try:
            entries = next(os.scandir(target), None)
        except OSError as exc:
            raise InputError(f"{path}: cannot read the directory: {exc.strerror}") from None
        if entries is not None:
            raise InputError(
                f"{path}: directory is not empty: refusing to write into it",
                hint="name a new or empty directory (nothing in an existing one is replaced)",
            )
        parent = target.parent
    else:
        parent = target.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(f"{path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write: permission denied in {parent}")
    return target


def write_directory_atomic(
    path: Path, files: Mapping[str, str], *, executable: Iterable[str] = (), inputs: Iterable[Path] = ()
) -> Path:
    """Write ``files`` (relative POSIX path -> UTF-8 text) as a new directory ``path``, whole or not at all: they
    are written into a temporary directory beside it, which is then renamed to ``path`` (replacing an empty
    directory there). Refuses what :func:`check_output_dir` refuses. Files get the modes a new file gets under the
    umask (those in ``executable`` the execute bits too), directories likewise. On any error or interrupt the
    temporary directory is removed and ``path`` is left as it was. Returns the resolved target."""
    target = check_output_dir(path, inputs=inputs)
    names = sorted(files)
    for name in names:
        rel = PurePosixPath(name)
        if rel.is_absolute() or not rel.parts or any(part in ("", ".", "..") for part in rel.parts):
            raise ValueError(f"not a relative file name: {name!r}")  # a bug of the caller, never user input
    runnable = set(executable)
    mask = _umask()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        for name in names:
            file = tmp.joinpath(*PurePosixPath(name).parts)
            for d in reversed(file.relative_to(tmp).parents[:-1]):
                if not (tmp / d).is_dir():
                    (tmp / d).mkdir()
                    os.chmod(tmp / d, 0o777 & ~mask)
            try:
                file.write_bytes(files[name].encode("utf-8"))
                os.chmod(file, (0o777 if name in runnable else 0o666) & ~mask)
            except OSError as exc:
                raise InputError(f"{path}: cannot write {name}: {exc.strerror or exc}") from None
        try:
            os.chmod(tmp, 0o777 & ~mask)
            os.replace(tmp, target)  # onto an absent or empty directory
        except OSError as exc:
            raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
