"""Token-length distributions from summary statistics: a lognormal fitted to the stated
percentiles, discretized to an equal-weight quantile grid whose mean matches the stated mean."""

from __future__ import annotations

import math

import numpy as np

from planner.domain import TokenDist
from planner.perf.queueing import normal_quantile

GRID_POINTS = 64


def lognormal_sigma(p50: float, p90: float, p99: float) -> float:
    """σ of a lognormal through the median and the 90th/99th percentiles (their average)."""
    sigmas = []
    if p90 > p50:
        sigmas.append(math.log(p90 / p50) / normal_quantile(0.9))
    if p99 > p50:
        sigmas.append(math.log(p99 / p50) / normal_quantile(0.99))
    return sum(sigmas) / len(sigmas) if sigmas else 0.0


def from_stats(mean: float, p50: float, p90: float, p99: float, max_tokens: float | None = None) -> TokenDist:
    """Quantile grid of the fitted lognormal, clipped at ``max_tokens``, scaled to ``mean``."""
    sigma = lognormal_sigma(p50, p90, p99)
    probs = (np.arange(GRID_POINTS) + 0.5) / GRID_POINTS
    z = np.array([normal_quantile(float(p)) for p in probs])
    grid = p50 * np.exp(sigma * z)
    if max_tokens is not None:
        grid = np.minimum(grid, max_tokens)
    grid = grid * (mean / grid.mean())
    grid = np.maximum(grid, 1.0)
    return TokenDist(mean=mean, p50=p50, p90=p90, p99=p99, grid=tuple(float(g) for g in grid))


def from_histogram(bins: list[tuple[float, float]]) -> TokenDist:
    """Equal-weight grid from ``(tokens, weight)`` bins (weights need not sum to 1)."""
    tokens = np.array([b[0] for b in bins], dtype=float)
    weights = np.array([b[1] for b in bins], dtype=float)
    order = np.argsort(tokens, kind="stable")
    tokens, weights = tokens[order], weights[order]
    cdf = np.cumsum(weights) / weights.sum()
    probs = (np.arange(GRID_POINTS) + 0.5) / GRID_POINTS
    grid = tokens[np.minimum(np.searchsorted(cdf, probs, side="left"), len(tokens) - 1)]

    def q(p: float) -> float:
        return float(tokens[min(int(np.searchsorted(cdf, p, side="left")), len(tokens) - 1)])

    mean = float((tokens * weights).sum() / weights.sum())
    return TokenDist(mean=mean, p50=q(0.5), p90=q(0.9), p99=q(0.99), grid=tuple(float(g) for g in grid))


def second_moment_ratio(dist: TokenDist) -> float:
    """``E[L²]/E[L]``: the mean prompt length a token of a chunked prefill attends over."""
    g = np.array(dist.grid)
    return float((g * g).mean() / g.mean())
