"""The speculative-decoding settings as outputs show them: the envelope's ``inputs.speculative`` and one line of
text (``planner estimate serve --speculative``, and ``size``, ``check``, ``simulate`` of a workload with
``speculative:``)."""

from __future__ import annotations

from typing import Any

from planner.domain import Speculative, Workload


def speculative_doc(spec: Speculative) -> dict[str, Any]:
    """Method, K, A, draft layers, the expected tokens per verify step, and where each figure came from."""
    return {
        "method": spec.method,
        "draft_tokens": spec.draft_tokens,
        "acceptance_rate": spec.acceptance_rate,
        "draft_layers": spec.draft_layers,
        "tokens_per_step": spec.tokens_per_step,
        "sources": dict(spec.sources),
        "references": [{"id": s.id, "title": s.title, "url": s.url, "as_of": s.as_of} for s in spec.references],
    }


def speculative_line(spec: Speculative) -> str:
    """``speculative: mtp, K 1, A 0.85 (deepseek-v3-technical-report), 1.85 tokens per verify step ...``."""
    by_source: dict[str, list[str]] = {}
    for name, src in spec.sources.items():
        by_source.setdefault(src, []).append(name)
    where = "; ".join(f"{', '.join(names)}: {src}" for src, names in sorted(by_source.items()))
    return (
        f"speculative: {spec.method}, K {spec.draft_tokens} draft tokens, A {spec.acceptance_rate:.3g} per token, "
        f"{spec.draft_layers} draft layer(s): {spec.tokens_per_step:.3g} tokens per verify step ({where})"
    )


def workload_speculative(workload: Workload) -> tuple[dict[str, Any], list[str]]:
    """``inputs`` entries and warnings for a workload's speculative settings (none without them)."""
    if workload.speculative is None:
        return {}, []
    return {"speculative": speculative_doc(workload.speculative)}, list(workload.speculative.warnings)


def with_speculative(line: str, workload: Workload) -> str:
    """The line above a command's tables (``engine: ...``), and the speculative settings under it when there are any."""
    return line if workload.speculative is None else f"{line}\n{speculative_line(workload.speculative)}"
