"""Synthetic request traces: seeded arrivals and lengths (pure numpy; writing lives in :mod:`planner.io.traces`).

* Arrivals: a renewal process whose gaps are Gamma with shape ``k = 1/cv2`` and mean ``1/rate``, so the
  squared coefficient of variation of the gaps is ``cv2`` (``cv2 = 1`` is a Poisson process, ``> 1``
  bursty, ``< 1`` smoother than Poisson).
* Optional diurnal cycle: the process runs in "operational time" and is mapped to wall-clock time
  through the inverse of the cumulative intensity of ``λ(t) = rate·(1 + A·sin(2πt/P))`` (P = 24 h),
  so the mean rate over whole days stays ``rate`` and the instantaneous rate swings by ``±A``.
* Lengths: lognormal with the given mean and log-space sigma (``μ = ln(mean) − σ²/2``), rounded to
  whole tokens, at least 1, at most the given maximum.
* Prefix blocks (for Mooncake-style ``hash_ids``): each request's prompt spans ``ceil(L/block)``
  blocks; with probability ``prefix_share`` it starts with the leading blocks of one of
  ``prefix_groups`` shared prompts (a system prompt or conversation history), the rest are fresh.
* Failures (BurstGPT-style): a ``fail_frac`` share of requests get 0 output tokens.

Same arguments and seed give the same trace, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from planner.domain import Trace
from planner.errors import InputError

DAY_S = 86_400.0
DIURNAL_AMPLITUDE = 0.5


MAX_REQUESTS = 100_000_000  # ~4 GB of CSV: beyond any trace a planner run needs


@dataclass(frozen=True, slots=True, kw_only=True)
class SynthSpec:
    requests: int
    rate_rps: float
    cv2: float = 1.0
    isl_mean: float = 1024.0
    isl_sigma: float = 1.0
    isl_max: int = 131_072
    osl_mean: float = 256.0
    osl_sigma: float = 0.8
    osl_max: int = 16_384
    diurnal: bool = False
    prefix_share: float = 0.5
    prefix_groups: int = 16
    block_tokens: int = 512
    fail_frac: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise InputError(f"--requests {self.requests}: must be between 1 and {MAX_REQUESTS:,}")
        for name, value in (
            ("--rate-rps", self.rate_rps),
            ("--cv2", self.cv2),
            ("--isl-mean", self.isl_mean),
            ("--osl-mean", self.osl_mean),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise InputError(f"{name} {value}: must be a positive finite number")
        if not 1e-6 <= self.rate_rps <= 1e7:
            raise InputError(f"--rate-rps {self.rate_rps}: must be between 1e-6 and 1e7 requests per second")
        if not 1e-4 <= self.cv2 <= 1e4:
            raise InputError(f"--cv2 {self.cv2}: must be between 1e-4 and 1e4")
        for name, value in (("--isl-sigma", self.isl_sigma), ("--osl-sigma", self.osl_sigma)):
            if not (value >= 0 and math.isfinite(value)):
                raise InputError(f"{name} {value}: must be a non-negative finite number")
        if not 0 <= self.fail_frac < 1:
            raise InputError(f"--fail-frac {self.fail_frac}: must be in [0, 1)")
        if not 0 <= self.prefix_share <= 1:
            raise InputError(f"--prefix-share {self.prefix_share}: must be in [0, 1]")
        if self.isl_max < 1 or self.osl_max < 1:
            raise InputError("--isl-max and --osl-max must be at least 1")


def gaps(rng: np.random.Generator, n: int, rate_rps: float, cv2: float) -> npt.NDArray[np.float64]:
    """``n`` inter-arrival gaps with mean ``1/rate_rps`` and squared coefficient of variation ``cv2``."""
    shape = 1.0 / cv2
    if cv2 == 1.0:
        return rng.exponential(1.0 / rate_rps, n)
    return rng.gamma(shape, 1.0 / (rate_rps * shape), n)


def diurnal_warp(op_time_s: npt.NDArray[np.float64], amplitude: float = DIURNAL_AMPLITUDE) -> npt.NDArray[np.float64]:
    """Map operational time (unit mean intensity) to wall-clock time under the intensity
    ``1 + A·sin(2πt/DAY)``: the inverse of ``Λ(t) = t + A·DAY/(2π)·(1 − cos(2πt/DAY))``."""
    if op_time_s.size == 0:
        return op_time_s
    horizon = float(op_time_s.max()) + 60.0  # Λ(t) >= t, so the inverse never exceeds its argument
    grid = np.linspace(0.0, horizon, max(2, int(horizon / 60.0) + 2))
    cum = grid + amplitude * DAY_S / (2 * math.pi) * (1 - np.cos(2 * math.pi * grid / DAY_S))
    warped: npt.NDArray[np.float64] = np.interp(op_time_s, cum, grid)
    return warped


def lognormal_tokens(rng: np.random.Generator, n: int, mean: float, sigma: float, maximum: int) -> npt.NDArray[np.int64]:
    mu = math.log(mean) - sigma * sigma / 2
    raw = rng.lognormal(mu, sigma, n) if sigma > 0 else np.full(n, mean)
    return np.clip(np.rint(raw), 1, maximum).astype(np.int64)


def prefix_blocks(
    rng: np.random.Generator, input_tokens: npt.NDArray[np.int64], spec: SynthSpec
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Block hash ids (flat values, offsets) with shared leading blocks within each prefix group."""
    n = input_tokens.size
    nblocks = -(-input_tokens // spec.block_tokens)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(nblocks, out=offsets[1:])
    group = rng.integers(0, max(1, spec.prefix_groups), n)
    shares = rng.random(n) < spec.prefix_share
    # A shared group prompt is up to 4 blocks of a per-group id range; the rest are fresh ids.
    shared_len = np.where(shares, np.minimum(nblocks, 1 + group % 4), 0)
    values = np.arange(offsets[-1], dtype=np.int64) + 1_000_000  # fresh ids, all distinct
    pos = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], nblocks)
    owner_shared = np.repeat(shared_len, nblocks)
    owner_group = np.repeat(group, nblocks)
    in_prefix = pos < owner_shared
    values[in_prefix] = owner_group[in_prefix] * 16 + pos[in_prefix]
    return values, offsets


def synthesize(spec: SynthSpec) -> Trace:
    """A seeded synthetic trace; arrivals in seconds from 0 (the first request arrives at 0)."""
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    n = spec.requests
    g = gaps(rng, n, spec.rate_rps, spec.cv2)
    g[0] = 0.0
    arrival = np.cumsum(g)
    if spec.diurnal:
        arrival = diurnal_warp(arrival)
    inp = lognormal_tokens(rng, n, spec.isl_mean, spec.isl_sigma, spec.isl_max)
    out = lognormal_tokens(rng, n, spec.osl_mean, spec.osl_sigma, spec.osl_max)
    if spec.fail_frac > 0:
        out[rng.random(n) < spec.fail_frac] = 0
    values, offsets = prefix_blocks(rng, inp, spec)
    return Trace(arrival_s=arrival, input_tokens=inp, output_tokens=out, hash_values=values, hash_offsets=offsets)
