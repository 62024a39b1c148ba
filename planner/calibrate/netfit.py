"""The KV-transfer curve of a link kind, fitted on measured transfers: ``t(S) = α + S / B_peak`` per port.

The fit minimises the relative error of the time (each point weighs the same whatever its size, so the small
transfers that the latency dominates count as much as the large ones that the bandwidth does): a weighted
linear least-squares problem in ``(α, 1/B_peak)`` with a closed-form solution. ``catalogs/links.yaml``
(``transfer_curves``) records the parameters and the points; ``tests/test_network.py`` refits them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.errors import InputError


@dataclass(frozen=True, slots=True, kw_only=True)
class CurveFit:
    latency_s: float
    peak_bytes_per_s: float
    rel_errors: tuple[float, ...]  # (fitted − measured) / measured time, per point

    @property
    def max_rel_error_frac(self) -> float:
        return max(abs(e) for e in self.rel_errors)


def fit_transfer_curve(message_bytes: Sequence[float], time_s: Sequence[float]) -> CurveFit:
    """Fit ``t = α + S/B`` to measured (bytes per port, seconds) pairs, minimising relative time error.

    Raises :class:`InputError` for fewer than two distinct sizes, non-positive inputs, or data whose best fit
    has a negative latency or no positive bandwidth (times that do not grow with size)."""
    s = np.asarray(message_bytes, dtype=np.float64)
    t = np.asarray(time_s, dtype=np.float64)
    if s.shape != t.shape or s.ndim != 1 or len(s) < 2 or len(np.unique(s)) < 2:
        raise InputError("a transfer curve needs at least two measurements of different sizes")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(t)) and np.all(s > 0) and np.all(t > 0)):
        raise InputError("transfer sizes and times must be positive finite numbers")
    design = np.column_stack([np.ones_like(s), s]) / t[:, None]
    (alpha, inv_bw), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    if inv_bw <= 0:
        raise InputError("the measured times do not grow with the transfer size: no bandwidth can be fitted")
    if alpha < 0:
        # The relative-error optimum wants a negative latency: refit the bandwidth alone with α = 0.
        alpha = 0.0
        inv_bw = float(np.sum(s / t) / np.sum((s / t) ** 2))
    predicted = alpha + s * inv_bw
    return CurveFit(
        latency_s=float(alpha),
        peak_bytes_per_s=float(1.0 / inv_bw),
        rel_errors=tuple(float(e) for e in (predicted - t) / t),
    )
