"""Speculative-decoding settings: a workload's ``speculative:`` or ``--speculative METHOD[:K[:A]]``, with the
method's published defaults (``catalogs/speculative.yaml``, :attr:`planner.domain.Catalog.speculative`) for what
they leave out.

A method without a published figure (n-gram lookup has none) needs it given: one ``error:`` naming the field.
MTP needs a model with a multi-token-prediction head; the catalog records which models ship one
(``methods.mtp.models``), and MTP on any other model is a warning (the catalog cannot tell), not an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import get_args

from planner import domain
from planner.errors import InputError
from planner.io.schemas import MAX_DRAFT_TOKENS

METHODS: tuple[domain.SpeculativeMethod, ...] = get_args(domain.SpeculativeMethod)
CATALOG_FILE = "catalogs/speculative.yaml"


def resolve_speculative(
    method: domain.SpeculativeMethod,
    draft_tokens: int | None,
    acceptance_rate: float | None,
    catalog: domain.Catalog,
    model: str,
    where: Callable[[str], str],
    hint: str | None = None,
) -> domain.Speculative:
    """The settings with the catalog's defaults for ``None``; ``where(field)`` names a field in errors (a workload's
    ``file: speculative.acceptance_rate``, or the flag). ``model``: the catalog id of the served model."""
    defaults = catalog.speculative.get(method)
    if defaults is None:
        raise InputError(
            f"{where('method')}: the catalogs have no entry for method {method} ({CATALOG_FILE}: methods.{method})",
            hint="add one with draft_layers (and sources) in a --catalog-dir overlay",
        )
    sources = {"draft_layers": defaults.sources.get("draft_layers", "")}
    k = draft_tokens
    if k is None:
        if defaults.draft_tokens is None:
            raise InputError(
                f"{where('draft_tokens')}: method {method} has no published default draft_tokens ({CATALOG_FILE}); give it",
                hint=hint,
            )
        k = defaults.draft_tokens
        sources["draft_tokens"] = defaults.sources.get("draft_tokens", "")
    else:
        sources["draft_tokens"] = "given"
    a = acceptance_rate
    if a is None:
        if defaults.acceptance_rate is None:
            raise InputError(
                f"{where('acceptance_rate')}: method {method} has no published default acceptance_rate ({CATALOG_FILE}); "
                "give the per-token acceptance measured on this traffic",
                hint=hint,
            )
        a = defaults.acceptance_rate
        sources["acceptance_rate"] = defaults.sources.get("acceptance_rate", "")
    else:
        sources["acceptance_rate"] = "given"
    warnings: tuple[str, ...] = ()
    if method == "mtp" and model not in defaults.models:
        known = ", ".join(defaults.models) or "none"
        warnings = (
            f"speculative mtp: the catalog does not record a multi-token-prediction head for {model} "
            f"({CATALOG_FILE} methods.mtp.models: {known}); the figures assume it has one",
        )
    return domain.Speculative(
        method=method,
        draft_tokens=k,
        acceptance_rate=a,
        draft_layers=defaults.draft_layers,
        sources=dict(sorted(sources.items())),
        references=tuple(catalog.sources[i] for i in sorted(set(sources.values())) if i in catalog.sources),
        warnings=warnings,
    )


def parse_speculative_flag(text: str, catalog: domain.Catalog, model: str, flag: str = "--speculative") -> domain.Speculative:
    """``METHOD[:K[:A]]`` (``mtp``, ``eagle:3``, ``ngram:4:0.6``, ``eagle::0.7``: an empty field takes the default)."""
    raw = text.strip()
    parts = raw.split(":")
    shown = f"{flag} {raw!r}"
    if len(parts) > 3:
        raise InputError(f"{shown}: expected METHOD[:K[:A]], e.g. mtp, eagle:3 or ngram:4:0.6")
    method_text = parts[0].strip().lower()
    method = next((m for m in METHODS if m == method_text), None)
    if method is None:
        raise InputError(f"{shown}: unknown method {parts[0].strip()!r}; use one of {', '.join(METHODS)}")
    k: int | None = None
    if len(parts) > 1 and parts[1].strip():
        k_text = parts[1].strip()
        if not k_text.isdigit() or not 1 <= int(k_text) <= MAX_DRAFT_TOKENS:
            raise InputError(f"{shown}: draft tokens K {k_text!r} must be a whole number from 1 to {MAX_DRAFT_TOKENS}")
        k = int(k_text)
    a: float | None = None
    if len(parts) > 2 and parts[2].strip():
        a_text = parts[2].strip()
        try:
            a = float(a_text)
        except ValueError:
            a = math.nan
        if not (math.isfinite(a) and 0.0 <= a < 1.0):
            raise InputError(f"{shown}: acceptance rate A {a_text!r} must be a number in [0, 1)")
    return resolve_speculative(
        method, k, a, catalog, model, lambda field: f"{shown}: {field}", hint=f"give it: {flag} {method}:K:A"
    )
