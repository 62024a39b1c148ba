"""Data, terminal summary and workload document of ``planner profile``."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from planner.profile.analysis import (
    Histogram,
    HourOfDay,
    PhaseShare,
    PrefixReuse,
    Profile,
    ProfiledClass,
    TokenSummary,
)

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


def _reuse(r: PrefixReuse | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "block_tokens": r.block_tokens,
        "num_blocks": r.num_blocks,
        "hit_blocks": r.hit_blocks,
        "hit_frac": r.hit_frac,
        "prompt_tokens": r.prompt_tokens,
        "hit_tokens": r.hit_tokens,
        "hit_token_frac": r.hit_token_frac,
        "working_set_blocks": r.working_set_blocks,
        "working_set_tokens": r.working_set_tokens,
        "full_hit_requests": r.full_hit_requests,
        "block_mismatch_requests": r.block_mismatch_requests,
    }


def _hours(h: HourOfDay | None) -> dict[str, Any] | None:
    if h is None:
        return None
    return {
        "origin": h.origin,
        "first_hour": h.first_hour,
        "span_days": h.span_days,
        "complete": h.complete,
        "exposure_s": list(h.exposure_s),
        "hourly_rps": list(h.hourly_rps),
    }


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
        "hour_of_day_rps": None if c.hour_of_day is None else list(c.hour_of_day.hourly_rps),
        "prefix_reuse": _reuse(c.prefix_reuse),
    }


def profile_data(p: Profile, phase: PhaseShare | None = None) -> dict[str, Any]:
    """The ``data`` of the JSON envelope (docs/design.md §2 keys, plus the rest of the profile)."""
    a = p.arrivals
    return {
        "num_requests": a.num_requests,
        "failed_requests": p.failed_requests,
        "out_of_order_requests": p.out_of_order_requests,
        "duration_s": a.duration_s,
        "start": p.start,
        "rate_rps": {"mean": a.mean_rps, "peak": a.peak_rps, "peak_window_s": a.window_s},
        "interarrival_cv2": a.interarrival_cv2,
        "hourly_rate_rps": list(p.hourly_rate_rps),
        "hour_of_day": _hours(p.hour_of_day),
        "input_tokens": p.input_tokens.as_dict(),
        "output_tokens": p.output_tokens.as_dict(),
        "corr_input_output": p.corr_input_output,
        "tokens_per_s": {"input": p.input_tokens_per_s, "output": p.output_tokens_per_s},
        "histograms": {"input_tokens": _hist(p.input_histogram), "output_tokens": _hist(p.output_histogram)},
        "prefix_reuse": _reuse(p.prefix_reuse),
        "phase_share": None if phase is None else _phase(phase),
        "classes": [_class(c) for c in p.classes],
        "class_rule": p.class_rule,
        "class_silhouette": {str(k): v for k, v in sorted(p.silhouette.items())},
    }


# --- workload document ------------------------------------------------------------------------


def _sig(x: float) -> float:
    return float(f"{x:.6g}")


HIT_FRAC_MAX = 0.999999  # the largest 6-digit fraction below 1: the workload needs hit_frac < 1
MAX_WORKING_SET_TOKENS = 1e9  # the workload schema's bound on working_set_tokens (planner.io.workload.MAX_TOKENS)


def _tokens(s: TokenSummary) -> tuple[dict[str, float], bool]:
    raw = s.as_dict()
    clamped = any(v < 1 for v in raw.values())
    return {k: _sig(max(v, 1.0)) for k, v in raw.items()}, clamped


def _prefix_cache(name: str, r: PrefixReuse, warnings: list[str]) -> dict[str, float]:
    """``prefix_cache`` of a class: its hit share of prompt tokens (already below 1: each request's last token
    counts as computed; rounded to 6 digits, and to at most :data:`HIT_FRAC_MAX` so rounding cannot reach 1)
    and its working set; ``location`` is left at the workload's default."""
    entry = {"hit_frac": min(_sig(r.hit_token_frac), HIT_FRAC_MAX)}
    if r.working_set_tokens > MAX_WORKING_SET_TOKENS:
        warnings.append(
            f"class {name}: the prefix working set is {r.working_set_tokens:,} tokens, above the workload's limit of "
            f"{MAX_WORKING_SET_TOKENS:,.0f}; working_set_tokens is left out (0: the cache lives in free KV memory)"
        )
    else:
        entry["working_set_tokens"] = _sig(r.working_set_tokens)
    return entry


def workload_document(
    p: Profile, *, model: str, precision: str, slo: dict[str, float] | None
) -> tuple[dict[str, Any], list[str]]:
    """The workload YAML ``planner size`` reads: one class per request class (or ``default``), each at
    its share of the trace's peak rate, with its prefix reuse (``prefix_cache``, when the trace has
    ``hash_ids``) and its day (``rate_profile``, when the trace spans at least 24 h). Returns the document
    and warnings."""
    warnings: list[str] = []
    a = p.arrivals
    rows: list[tuple[str, float, float, TokenSummary, TokenSummary, PrefixReuse | None, HourOfDay | None]] = (
        [
            (
                c.name,
                a.peak_rps * c.share_frac,
                c.arrivals.interarrival_cv2,
                c.input_tokens,
                c.output_tokens,
                c.prefix_reuse,
                c.hour_of_day,
            )
            for c in p.classes
        ]
        if p.classes
        else [("default", a.peak_rps, a.interarrival_cv2, p.input_tokens, p.output_tokens, p.prefix_reuse, p.hour_of_day)]
    )
    hours = p.hour_of_day
    if hours is not None and not hours.complete:
        warnings.append(
            f"the trace spans {24 * hours.span_days:.3g} h, less than a day: no rate_profile is written "
            "(hours the trace did not observe are not invented; without one every hour is sized at the peak rate)"
        )
    classes = []
    for name, rate, cv2, inp, out, reuse, day in rows:
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
        if reuse is not None:
            entry["prefix_cache"] = _prefix_cache(name, reuse, warnings)
        if day is not None and day.complete:
            entry["rate_profile"] = {"hourly_rps": [0.0 if v is None else _sig(v) for v in day.hourly_rps]}
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
        summary.add_row(
            f"prefix reuse ({r['block_tokens']}-token blocks)",
            f"{100 * r['hit_token_frac']:.1f}% of prompt tokens ({100 * r['hit_frac']:.1f}% of blocks); "
            f"working set {r['working_set_tokens']:,} tokens",
        )
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
    day = data["hour_of_day"]
    if day is not None and day["complete"]:
        origin = "00:00" if day["origin"] == "clock" else "the first request's hour"
        parts.append(
            Text(
                f"hour of day from {origin} (req/s, mean over {day['span_days']:.3g} days, "
                f"max {_fmt(max(day['hourly_rps']))}): {_spark(tuple(day['hourly_rps']))}"
            )
        )
    for key, title in (("input_tokens", "input"), ("output_tokens", "output")):
        h = data["histograms"][key]
        parts.append(_bars(title, Histogram(edges=tuple(h["edges"]), counts=tuple(h["counts"]))))
    if data["classes"]:
        classes = Table(title=f"request classes ({data['class_rule']})", title_justify="left")
        reuse = data["prefix_reuse"] is not None
        for col in ("class", "share", "mean rps", "peak rps", "cv²", "in p50", "in p99", "out p50", "out p99"):
            classes.add_column(col, justify="right")
        if reuse:
            classes.add_column("prefix hit", justify="right")
            classes.add_column("working set", justify="right")
        for c in data["classes"]:
            r = c["prefix_reuse"]
            extra = [f"{100 * r['hit_token_frac']:.1f}%", f"{r['working_set_tokens']:,}"] if reuse and r is not None else []
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
                *extra,
            )
        parts.append(classes)
    return Group(*parts)
