"""Data, terminal summary and workload document of ``planner profile``."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from planner.profile.analysis import Histogram, PhaseShare, Profile, ProfiledClass, TokenSummary

BAR_WIDTH = 40
SPARK = "▁▂▃▄▅▆▇█"


def _phase(p: PhaseShare) -> dict[str, Any]:
    return {
        "model": p.model,
        "gpu": p.gpu,
        "tp": p.tp,
        "precision": p.precision,
        "prefill_token_frac": p.prefill_token_frac,
        "prefill_flop_frac": p.prefill_flop_frac,
        "prefill_gpu_time_frac": p.prefill_gpu_time_frac,
        "decode_batch": p.decode_batch,
        "classification": p.classification,
    }


def _hist(h: Histogram) -> dict[str, Any]:
    return {"edges": list(h.edges), "counts": list(h.counts)}


def _class(c: ProfiledClass) -> dict[str, Any]:
    return {
        "name": c.name,
        "num_requests": c.num_requests,
        "share_frac": c.share_frac,
        "rate_rps": {"mean": c.arrivals.mean_rps, "peak": c.arrivals.peak_rps},
        "interarrival_cv2": c.arrivals.interarrival_cv2,
        "input_tokens": c.input_tokens.as_dict(),
        "output_tokens": c.output_tokens.as_dict(),
        "center_tokens": {"input": c.center_tokens[0], "output": c.center_tokens[1]},
    }


def profile_data(p: Profile, phase: PhaseShare | None = None) -> dict[str, Any]:
    """The ``data`` of the JSON envelope (docs/design.md §2 keys, plus the rest of the profile)."""
    a = p.arrivals
    reuse = p.prefix_reuse
    return {
        "num_requests": a.num_requests,
        "failed_requests": p.failed_requests,
        "out_of_order_requests": p.out_of_order_requests,
        "duration_s": a.duration_s,
        "start": p.start,
        "rate_rps": {"mean": a.mean_rps, "peak": a.peak_rps, "peak_window_s": a.window_s},
        "interarrival_cv2": a.interarrival_cv2,
        "hourly_rate_rps": list(p.hourly_rate_rps),
        "input_tokens": p.input_tokens.as_dict(),
        "output_tokens": p.output_tokens.as_dict(),
        "corr_input_output": p.corr_input_output,
        "tokens_per_s": {"input": p.input_tokens_per_s, "output": p.output_tokens_per_s},
        "histograms": {"input_tokens": _hist(p.input_histogram), "output_tokens": _hist(p.output_histogram)},
        "prefix_reuse": None
        if reuse is None
        else {
            "block_tokens": reuse.block_tokens,
            "num_blocks": reuse.num_blocks,
            "hit_blocks": reuse.hit_blocks,
            "hit_frac": reuse.hit_frac,
        },
        "phase_share": None if phase is None else _phase(phase),
        "classes": [_class(c) for c in p.classes],
        "class_rule": p.class_rule,
        "class_silhouette": {str(k): v for k, v in sorted(p.silhouette.items())},
    }


# --- workload document ------------------------------------------------------------------------


def _sig(x: float) -> float:
    return float(f"{x:.6g}")


def _tokens(s: TokenSummary) -> tuple[dict[str, float], bool]:
    raw = s.as_dict()
    clamped = any(v < 1 for v in raw.values())
    return {k: _sig(max(v, 1.0)) for k, v in raw.items()}, clamped


def workload_document(
    p: Profile, *, model: str, precision: str, slo: dict[str, float] | None
) -> tuple[dict[str, Any], list[str]]:
    """The workload YAML ``planner size`` reads: one class per request class (or ``default``),
    each at its share of the trace's peak rate. Returns the document and warnings."""
    warnings: list[str] = []
    a = p.arrivals
    rows: list[tuple[str, float, float, TokenSummary, TokenSummary]] = (
        [(c.name, a.peak_rps * c.share_frac, c.arrivals.interarrival_cv2, c.input_tokens, c.output_tokens) for c in p.classes]
        if p.classes
        else [("default", a.peak_rps, a.interarrival_cv2, p.input_tokens, p.output_tokens)]
    )
    classes = []
    for name, rate, cv2, inp, out in rows:
        itok, iclamp = _tokens(inp)
        otok, oclamp = _tokens(out)
        if iclamp or oclamp:
            warnings.append(f"class {name}: token statistics below 1 written as 1 (the workload needs positive lengths)")
        entry: dict[str, Any] = {
            "name": name,
            "rate_rps": _sig(rate),
            "interarrival_cv2": _sig(min(cv2, 1e4)),
            "input_tokens": itok,
            "output_tokens": otok,
        }
        if slo is not None:
            entry["slo"] = dict(slo)
        classes.append(entry)
    return {"model": model, "precision": precision, "classes": classes}, warnings


# --- terminal ---------------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _bars(title: str, h: Histogram) -> Text:
    text = Text(f"{title} (tokens, power-of-two bins)\n", style="bold")
    peak = max(h.counts) if h.counts else 0
    total = sum(h.counts) or 1
    first = next((i for i, c in enumerate(h.counts) if c), 0)
    for i in range(first, len(h.counts)):
        lo, hi = h.edges[i], h.edges[i + 1]
        label = "0" if i == 0 else f"{int(lo):>7,}" + " " * 8 if hi - lo == 1 else f"{int(lo):>7,}–{int(hi) - 1:<7,}"
        n = round(BAR_WIDTH * h.counts[i] / peak) if peak else 0
        text.append(f"  {label:>17} │{'█' * n:<{BAR_WIDTH}} {h.counts[i]:>11,} {100 * h.counts[i] / total:5.1f}%\n")
    return text


def _spark(values: tuple[float, ...]) -> str:
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in values)


def profile_table(data: dict[str, Any], source: str) -> RenderableType:
    rate = data["rate_rps"]
    summary = Table(title=f"profile of {source}", show_header=False, title_justify="left")
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("requests", f"{data['num_requests']:,}")
    if data["failed_requests"]:
        summary.add_row("failed requests (left out)", f"{data['failed_requests']:,}")
    summary.add_row("duration", f"{data['duration_s']:,.1f} s" + (f" from {data['start']}" if data["start"] else ""))
    summary.add_row("mean rate", f"{_fmt(rate['mean'])} req/s")
    summary.add_row(f"peak rate ({_fmt(rate['peak_window_s'])} s window)", f"{_fmt(rate['peak'])} req/s")
    summary.add_row("inter-arrival cv²", f"{_fmt(data['interarrival_cv2'])} (1 = Poisson)")
    summary.add_row("corr(input, output)", _fmt(data["corr_input_output"], 3))
    tps = data["tokens_per_s"]
    summary.add_row("tokens/s in / out", f"{_fmt(tps['input'])} / {_fmt(tps['output'])}")
    if data["prefix_reuse"] is not None:
        r = data["prefix_reuse"]
        summary.add_row(f"prefix reuse ({r['block_tokens']}-token blocks)", f"{100 * r['hit_frac']:.1f}% of blocks")
    if data["phase_share"] is not None:
        ph = data["phase_share"]
        summary.add_row(
            f"prefill share ({ph['model']} on {ph['tp']}× {ph['gpu']})",
            f"{100 * ph['prefill_token_frac']:.1f}% tokens, {100 * ph['prefill_flop_frac']:.1f}% FLOPs, "
            f"{100 * ph['prefill_gpu_time_frac']:.1f}% GPU time: {ph['classification']}",
        )
    lengths = Table(title="lengths (tokens)", title_justify="left")
    for col in ("", "mean", "p50", "p90", "p99", "max"):
        lengths.add_column(col, justify="right")
    for key in ("input_tokens", "output_tokens"):
        s = data[key]
        lengths.add_row(key.split("_")[0], *(_fmt(s[k]) for k in ("mean", "p50", "p90", "p99", "max")))
    parts: list[RenderableType] = [summary, lengths]
    hourly = data["hourly_rate_rps"]
    if len(hourly) > 1:
        parts.append(Text(f"hourly rate (req/s, {len(hourly)} h, max {_fmt(max(hourly))}): {_spark(tuple(hourly))}"))
    for key, title in (("input_tokens", "input"), ("output_tokens", "output")):
        h = data["histograms"][key]
        parts.append(_bars(title, Histogram(edges=tuple(h["edges"]), counts=tuple(h["counts"]))))
    if data["classes"]:
        classes = Table(title=f"request classes ({data['class_rule']})", title_justify="left")
        for col in ("class", "share", "mean rps", "peak rps", "cv²", "in p50", "in p99", "out p50", "out p99"):
            classes.add_column(col, justify="right")
        for c in data["classes"]:
            classes.add_row(
                c["name"],
                f"{100 * c['share_frac']:.1f}%",
                _fmt(c["rate_rps"]["mean"]),
                _fmt(c["rate_rps"]["peak"]),
                _fmt(c["interarrival_cv2"]),
                _fmt(c["input_tokens"]["p50"]),
                _fmt(c["input_tokens"]["p99"]),
                _fmt(c["output_tokens"]["p50"]),
                _fmt(c["output_tokens"]["p99"]),
            )
        parts.append(classes)
    return Group(*parts)
