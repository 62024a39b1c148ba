"""Speculative-decoding settings of a workload: the method's published defaults for what it leaves out.

Defaults per method live in ``catalogs/speculative.yaml`` (each with its source); a method without a
published default needs its figures given.
"""

from __future__ import annotations

from planner import domain
from planner.errors import InputError


def resolve_speculative(
    method: domain.SpeculativeMethod,
    draft_tokens: int | None,
    acceptance_rate: float | None,
    model: domain.ModelSpec,
    origin: str,
) -> domain.Speculative:
    if draft_tokens is None or acceptance_rate is None:
        raise InputError(f"{origin}: give draft_tokens and acceptance_rate for method {method}")
    return domain.Speculative(
        method=method,
        draft_tokens=draft_tokens,
        acceptance_rate=acceptance_rate,
        draft_layers=0 if method == "ngram" else 1,
        source="given in the workload",
    )
