"""Running a study's independent points: in this process, on local worker processes, or as Ray tasks.

A *point* is any picklable value and ``fn(point)`` its row, a JSON-able dict; ``fn`` and ``init`` are top-level
functions (or :func:`functools.partial` of one), so that a worker process or a Ray worker can import them.
:func:`execute` returns the rows in point order, whatever the backend, the number of workers or the order in which
the points finish, and every row goes through JSON once, so that a row computed now, one sent back by a worker and
one read back from a run directory are the same value: the result depends on the points, never on how they ran.

Backends:

* ``local`` (default): one point after the other in this process when one worker is asked for (or one CPU is
  usable), else a pool of worker processes, ``init(*init_args)`` run once in each; a worker never outlives this
  process, and Ctrl-C kills the workers at once (:func:`_bind_to_parent`, :func:`_abandon`).
* ``ray``: Ray tasks (``pip install 'planner-disagg[ray]'``) on the cluster at ``address``, or on a local instance
  of ``jobs`` CPUs that :func:`execute` starts and stops; ``init_args`` go into the object store once and each Ray
  worker process runs ``init`` once. Ctrl-C cancels the tasks (their workers are killed). On a cluster, every node
  must have this version of ``planner`` installed.

A run directory (``run_dir``) keeps each finished point's row (:mod:`planner.io.rundir`), under its ``key`` (the
hash of the point's resolved inputs, given by the caller; points with one key are computed once), as soon as it
finishes; a study started again on the same directory computes only the points missing there, and an interrupted
one raises :class:`~planner.errors.StudyInterrupted` (exit 130) saying how many points finished and how to resume.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import enum
import hashlib
import importlib
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import PurePath
from typing import Any

from planner.errors import InputError, StudyInterrupted

__all__ = [
    "BACKENDS",
    "MAX_JOBS",
    "RAY_EXTRA",
    "RAY_INIT_OPTIONS",
    "Progress",
    "check_execution",
    "cpu_count",
    "execute",
    "fingerprint",
    "start_ray",
]

BACKENDS = ("local", "ray")
MAX_JOBS = 1024  # a --jobs above this is refused; any value is capped at the usable CPU count
RAY_EXTRA = "pip install 'planner-disagg[ray]'"

Row = dict[str, Any]
Progress = Callable[[int, int], None]
"""``progress(done, total)``: called once before any point runs (``done`` counts the points a run directory
held already) and after each point finishes, in the calling thread."""


def check_execution(backend: str = "local", jobs: int | None = None, address: str | None = None) -> None:
    """Refuse (one :class:`InputError`) an unknown backend, a ``jobs`` out of range, or an address without Ray."""
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend}: use one of {', '.join(BACKENDS)}")
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        raise InputError(f"--jobs {jobs}: must be between 1 and {MAX_JOBS} (it is capped at the CPU count)")
    if address is not None and backend != "ray":
        raise InputError(f"--address {address}: only with --backend ray")
    if address is not None and not address.strip():
        raise InputError("--address: empty (give the Ray cluster's address, e.g. ray://HOST:10001, or auto)")


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------------
# Fingerprints: the hash of a point's resolved inputs.


def _canonical(obj: Any) -> Any:
    """A JSON value that stands for ``obj`` and nothing else: dataclasses with their type's name, enums by
    value, sets sorted, floats by their shortest repr (so -0.0, nan and inf are kept apart)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return {"__enum__": type(obj).__name__, "value": _canonical(obj.value)}
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return {"__float__": repr(obj)} if not math.isfinite(obj) or obj == 0.0 else obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: _canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {"__type__": type(obj).__qualname__, **fields}
    if isinstance(obj, Mapping):
        items = sorted(((json.dumps(_canonical(k), sort_keys=True), _canonical(v)) for k, v in obj.items()))
        return {"__map__": [[k, v] for k, v in items]}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return {"__set__": sorted(json.dumps(_canonical(v), sort_keys=True) for v in obj)}
    if isinstance(obj, PurePath):
        return {"__path__": str(obj)}
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return _canonical(tolist())
    raise TypeError(f"fingerprint: cannot represent a {type(obj).__name__}")


def fingerprint(obj: Any) -> str:
    """SHA-256 (hex) of ``obj``'s canonical JSON: equal for equal values, in every process and on every run."""
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Local worker processes.

_WORKER_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _worker_start(parent_pid: int, init: Callable[..., None] | None, init_args: tuple[Any, ...]) -> None:
    """A local worker's start: bind it to the parent, then ``init(*init_args)``."""
    _bind_to_parent(parent_pid)
    if init is not None:
        init(*init_args)


def _bind_to_parent(parent_pid: int) -> None:
    """A worker never outlives the process that started it, and leaves Ctrl-C to it: SIGINT
    is ignored (the parent cancels the study and kills its workers), SIGTERM and SIGHUP end the
    worker at once (their default action, whatever handler the parent had installed), and the
    kernel kills the worker when its parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere a watchdog
    thread polls the parent's pid). The parent blocks these signals while it forks the workers
    (:func:`_signals_blocked`); they are unblocked here, once the handlers are in place."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)
    ppid = os.getppid()  # the parent itself under fork (a fork server otherwise)
    if not _alive(parent_pid, ppid):  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, ppid), name="planner-parent-watch", daemon=True).start()


def _alive(pid: int, ppid: int) -> bool:
    if os.getppid() != ppid:
        return False  # re-parented (to init or a subreaper): the parent is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours to signal
    return True


def _watch_parent(parent_pid: int, ppid: int) -> None:
    tick = threading.Event()
    while _alive(parent_pid, ppid):
        tick.wait(0.5)
    os._exit(1)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Block SIGINT, SIGTERM and SIGHUP while worker processes are forked, so that none arrives in
    a child before :func:`_bind_to_parent` sets its handlers; pending ones are delivered after."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _abandon(pool: ProcessPoolExecutor) -> None:
    """Stop a study now (Ctrl-C, SIGTERM turned into an exception, an error): kill the workers (they
    hold nothing that needs cleaning up), let the executor fail the points not done (cancelling
    them here races its manager thread, which then prints a traceback) and reap the workers."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    for proc in workers:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            proc.kill()
    pool.shutdown(wait=False)
    for proc in workers:
        with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
            proc.join(timeout=5)
    manager = getattr(pool, "_executor_manager_thread", None)
    if isinstance(manager, threading.Thread):
        manager.join(timeout=5)  # it notices the dead workers and fails the remaining futures


Done = Callable[[int, Row], None]


def _run_serial(
    todo: Sequence[tuple[int, Any]],
    fn: Callable[[Any], Row],
    init: Callable[..., None] | None,
    init_args: tuple[Any, ...],
    done: Done,
) -> None:
    if init is not None:
        init(*init_args)
    for i, point in todo:
        done(i, fn(point))


def _run_pool(
    todo: Sequence[tuple[int, Any]],
    fn: Callable[[Any], Row],
    init: Callable[..., None] | None,
    init_args: tuple[Any, ...],
    workers: int,
    done: Done,
) -> None:
    # Not a `with` block: its exit waits for every submitted point, which is what Ctrl-C must not do.
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_start, initargs=(os.getpid(), init, init_args))
    index: dict[Future[Row], int] = {}
    try:
        with _signals_blocked():  # the workers are forked at the first submit
            index[pool.submit(fn, todo[0][1])] = todo[0][0]
        for i, point in todo[1:]:
            index[pool.submit(fn, point)] = i
        running = set(index)
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for f in sorted(finished, key=index.__getitem__):
                done(index[f], f.result())
    except BaseException:
        _abandon(pool)
        raise
    pool.shutdown(wait=True)


# ---------------------------------------------------------------------------------------------
# Ray.

_RAY_INIT_DONE: list[str] = []  # in a Ray worker: the object ref whose init_args this process has run init with


def _ray_point(fn: Callable[[Any], Row], init: Callable[..., None] | None, boxed: list[Any], point: Any) -> Row:
    """One point in a Ray worker; ``init`` runs once per worker process (``boxed``: the init_args' object
    ref, in a list so that Ray hands the ref over instead of the value for every task)."""
    if init is not None:
        ref = boxed[0]
        if [ref.hex()] != _RAY_INIT_DONE:
            ray = _import_ray()
            init(*ray.get(ref))
            _RAY_INIT_DONE[:] = [ref.hex()]
    return fn(point)


def _import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise InputError(f"--backend ray: Ray is not installed; install the extra: {RAY_EXTRA}") from None


RAY_INIT_OPTIONS: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
"""What :func:`execute` passes to ``ray.init`` for a local instance (with ``num_cpus``): no dashboard (it does not
start on every machine and costs start-up time), workers' output kept out of this process's stderr."""


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process (and so in the processes it starts) for the block; the old handler after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to the Ray cluster at ``address``, or start a local instance of ``num_cpus`` CPUs; False (and
    nothing done) when Ray is initialized already in this process."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    try:
        if address is not None:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        else:
            # The local instance's daemons ignore Ctrl-C, as the local backend's workers do (they inherit the ignored
            # signal from this process while it starts them): a terminal's SIGINT reaches the whole process group,
            # and this process alone stops the study (exit 130, the finished points kept) and the instance.
            with _sigint_ignored():
                ray.init(num_cpus=num_cpus, **RAY_INIT_OPTIONS)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address is not None else "a local Ray instance"
        raise InputError(f"--backend ray: cannot start or reach {where}: {exc}") from None
    return True


def _run_ray(
    todo: Sequence[tuple[int, Any]],
    fn: Callable[[Any], Row],
    init: Callable[..., None] | None,
    init_args: tuple[Any, ...],
    jobs: int | None,
    address: str | None,
    done: Done,
) -> None:
    ray = _import_ray()
    started = start_ray(address, min(jobs or cpu_count(), cpu_count()))
    refs: list[Any] = []
    try:
        boxed = [ray.put(tuple(init_args))] if init is not None else [None]
        remote = ray.remote(num_cpus=1)(_ray_point)
        limit = jobs if address is not None and jobs is not None else len(todo)  # tasks in flight on a cluster
        index: dict[Any, int] = {}
        queue = list(todo)
        queue.reverse()
        running: list[Any] = []
        while queue or running:
            while queue and len(running) < limit:
                i, point = queue.pop()
                ref = remote.remote(fn, init, boxed, point)
                index[ref] = i
                running.append(ref)
                refs.append(ref)
            ready, running = ray.wait(running, num_returns=1)
            more, running = ray.wait(running, num_returns=len(running), timeout=0) if running else ([], [])
            for ref in sorted([*ready, *more], key=index.__getitem__):
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else exc) from None
                done(index[ref], row)
    except BaseException:
        # A local instance this call started goes with its workers at ray.shutdown below. Force-cancelling its
        # tasks first raced the shutdown: now and then the driver aborted in Ray's task manager (exit 1, no message
        # of ours). On a cluster the tasks are cancelled (a running one gets a KeyboardInterrupt).
        if not started:
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
        raise
    finally:
        if started:
            with contextlib.suppress(Exception):
                ray.shutdown()


# ---------------------------------------------------------------------------------------------


def execute(
    points: Sequence[Any],
    fn: Callable[[Any], Row],
    *,
    init: Callable[..., None] | None = None,
    init_args: tuple[Any, ...] = (),
    backend: str = "local",
    jobs: int | None = None,
    address: str | None = None,
    run_dir: os.PathLike[str] | str | None = None,
    study: Mapping[str, Any] | None = None,
    keys: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[Row]:
    """``fn(point)`` for every point, returned in point order (see the module docstring).

    ``init(*init_args)`` runs once in each worker (in this process when it runs the points itself) before its
    first point. ``jobs``: local worker processes or local Ray CPUs (default one per usable CPU; capped at that
    count); on a Ray cluster, the most tasks in flight (default all). ``run_dir`` with ``study`` (a JSON-able
    document of everything the rows depend on; another study's directory is refused) and ``keys`` (one per point,
    the hash of its resolved inputs; default :func:`fingerprint` of the point) keeps the finished rows there."""
    from pathlib import Path

    from planner.io.rundir import open_run_dir

    check_execution(backend, jobs, address)
    total = len(points)
    rows: list[Row | None] = [None] * total
    store = None
    if keys is not None and len(keys) != total:
        raise ValueError(f"execute: {len(keys)} keys for {total} points")
    if run_dir is not None:
        if study is None:
            raise ValueError("execute: a run directory needs the study it holds")
        keys = list(keys) if keys is not None else [fingerprint(p) for p in points]
        store = open_run_dir(Path(run_dir), study, total)
        for i, k in enumerate(keys):
            rows[i] = store.load(k)
    first: dict[str, int] = {}  # key -> the first point that has it (computed; the others copy its row)
    copies: dict[int, list[int]] = {}
    todo: list[tuple[int, Any]] = []
    for i, point in enumerate(points):
        if rows[i] is not None:
            continue
        if keys is not None:
            if keys[i] in first:
                copies[first[keys[i]]].append(i)
                continue
            first[keys[i]] = i
        copies[i] = []
        todo.append((i, point))
    count = [total - len(todo) - sum(len(c) for c in copies.values())]

    def done(i: int, row: Row) -> None:
        text = json.dumps(row, sort_keys=False)  # a row that JSON cannot hold fails here, in every backend
        rows[i] = json.loads(text)
        if store is not None and keys is not None:
            store.save(keys[i], rows[i])  # type: ignore[arg-type]
        for j in copies[i]:
            rows[j] = json.loads(text)
        count[0] += 1 + len(copies[i])
        if progress is not None:
            progress(count[0], total)

    if progress is not None:
        progress(count[0], total)
    cpus = cpu_count()
    try:
        if not todo:
            pass
        elif backend == "ray":
            _run_ray(todo, fn, init, init_args, jobs, address, done)
        elif min(jobs or cpus, cpus, len(todo)) <= 1:
            _run_serial(todo, fn, init, init_args, done)
        else:
            _run_pool(todo, fn, init, init_args, min(jobs or cpus, cpus, len(todo)), done)
    except KeyboardInterrupt as exc:
        if store is None or keys is None:
            raise
        kept = {k for k in set(keys) if store.load(k) is not None}  # the files, not a count Ctrl-C may have cut short
        finished = sum(1 for k in keys if k in kept)
        raise StudyInterrupted(
            f"interrupted: {finished} of {total} points finished, kept in {run_dir}",
            hint=f"run the same command again (the same --run-dir) to compute only the {total - finished} missing points",
        ) from exc
    out = [r for r in rows if r is not None]
    assert len(out) == total, "execute: a point without a row"
    return out
