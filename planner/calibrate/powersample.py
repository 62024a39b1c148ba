"""Board power sampled in a background thread while a step is replayed (``calibrate run --power``).

Stdlib only, so ``bench/calibrate_gpu.py`` runs it on a bare GPU host. The reader of one sample is
injected: on the GPU host :func:`nvml_reader` reads NVML (``nvidia-ml-py``, imported only there);
tests pass a fake. A :class:`PowerSampler` polls the reader at ``hz`` from ``start()`` to ``stop()``
and :meth:`PowerSampler.reading` summarizes the samples after a settling time (the board's power
ramps for a few hundred ms after the load starts): mean, peak and count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from planner.errors import InputError

DEFAULT_HZ = 20.0
DEFAULT_SECONDS = 2.0  # sustained replay per step
DEFAULT_SETTLE_S = 0.5  # samples of the first half second are not averaged
IDLE_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class PowerReading:
    mean_w: float
    peak_w: float
    samples: int
    seconds: float  # span of the samples averaged


class PowerSampler:
    """Polls ``read_w`` (watts) every ``1/hz`` s in a daemon thread between ``start`` and ``stop``."""

    def __init__(
        self, read_w: Callable[[], float], *, hz: float = DEFAULT_HZ, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not hz > 0:
            raise InputError(f"power sampling rate {hz} Hz: must be positive")
        self._read = read_w
        self._period = 1.0 / hz
        self._clock = clock
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._error: BaseException | None = None

    def _loop(self) -> None:
        next_at = self._clock()
        while not self._stop.is_set():
            try:
                self._samples.append((self._clock() - self._t0, float(self._read())))
            except Exception as exc:  # surfaced by stop(): a thread's exception would otherwise be lost
                self._error = exc
                return
            next_at += self._period
            self._stop.wait(max(0.0, next_at - self._clock()))

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("PowerSampler already started")
        self._samples.clear()
        self._stop.clear()
        self._t0 = self._clock()
        self._thread = threading.Thread(target=self._loop, name="power-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[float, float]]:
        """Stop polling; the (seconds since start, watts) samples."""
        if self._thread is None:
            raise RuntimeError("PowerSampler not started")
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise InputError(f"power sampling failed: {type(self._error).__name__}: {self._error}")
        return list(self._samples)

    def __enter__(self) -> PowerSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self.stop()

    def samples(self) -> list[tuple[float, float]]:
        return list(self._samples)


def summarize(samples: list[tuple[float, float]], settle_s: float = DEFAULT_SETTLE_S) -> PowerReading:
    """Mean and peak of the samples taken after ``settle_s`` (all of them when fewer than two remain)."""
    if not samples:
        raise InputError("power sampling: no samples (the step ended before the first poll)")
    kept = [(t, w) for t, w in samples if t >= settle_s]
    if len(kept) < 2:
        kept = samples
    watts = [w for _, w in kept]
    return PowerReading(mean_w=sum(watts) / len(watts), peak_w=max(watts), samples=len(watts), seconds=kept[-1][0] - kept[0][0])


def sustain(
    replay: Callable[[], object],
    sync: Callable[[], object],
    step_s: float,
    sampler: PowerSampler,
    *,
    seconds: float = DEFAULT_SECONDS,
    settle_s: float = DEFAULT_SETTLE_S,
) -> PowerReading:
    """Replay a step of ``step_s`` seconds back to back for at least ``seconds`` (and ``settle_s``
    more), sampling power throughout; the reading of the steady part."""
    count = max(1, int((seconds + settle_s) / max(step_s, 1e-6)) + 1)
    sync()
    sampler.start()
    try:
        for _ in range(count):
            replay()
        sync()
    finally:
        samples = sampler.stop()
    return summarize(samples, settle_s)


def idle(sampler: PowerSampler, seconds: float = IDLE_SECONDS, sleep: Callable[[float], object] = time.sleep) -> PowerReading:
    """Power with nothing running, averaged over ``seconds`` (after a short settle)."""
    sampler.start()
    try:
        sleep(seconds)
    finally:
        samples = sampler.stop()
    return summarize(samples, min(DEFAULT_SETTLE_S, seconds / 4))


@dataclass(frozen=True, slots=True)
class NvmlDevice:
    read_w: Callable[[], float]
    nvml_version: str
    driver: str
    power_limit_w: float
    field: str  # which NVML reading: "instant" (NVML_FI_DEV_POWER_INSTANT) or "average" (nvmlDeviceGetPowerUsage)


def nvml_reader(index: int = 0, nvml: object | None = None) -> NvmlDevice:
    """Board power of GPU ``index`` through NVML (``pip install nvidia-ml-py``; module ``pynvml``).
    Prefers the instantaneous field (Ampere and later, driver 530+); else ``nvmlDeviceGetPowerUsage``,
    which on recent GPUs is a one-second moving average."""
    if nvml is None:
        try:
            import importlib

            nvml = importlib.import_module("pynvml")  # optional (nvidia-ml-py): only on the GPU host
        except ImportError:
            raise InputError("--power needs NVML bindings", hint="pip install nvidia-ml-py") from None
    m: Any = nvml
    m.nvmlInit()
    handle = m.nvmlDeviceGetHandleByIndex(index)

    def text(value: object) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    version = text(m.nvmlSystemGetNVMLVersion())
    driver = text(m.nvmlSystemGetDriverVersion())
    limit_w = m.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
    field_id = getattr(m, "NVML_FI_DEV_POWER_INSTANT", None)

    def average_w() -> float:
        return float(m.nvmlDeviceGetPowerUsage(handle)) / 1000.0

    if field_id is not None:

        def instant_w() -> float:
            (value,) = m.nvmlDeviceGetFieldValues(handle, [field_id])
            if getattr(value, "nvmlReturn", 0) != 0:
                raise RuntimeError(f"NVML field {field_id} returned {value.nvmlReturn}")
            kind = getattr(value, "valueType", 1)  # NVML_VALUE_TYPE_*: 0 double, 1 uint, 2 ulong, 3 ulonglong, 4 sll, 5 sint
            attr = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal"}.get(kind, "uiVal")
            return float(getattr(value.value, attr)) / 1000.0

        try:
            if instant_w() > 0:
                return NvmlDevice(instant_w, version, driver, limit_w, "instant")
        except Exception:  # older driver or GPU: fall back to the averaged reading
            pass
    return NvmlDevice(average_w, version, driver, limit_w, "average")
