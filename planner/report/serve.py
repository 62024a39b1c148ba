"""Data and table of ``planner estimate serve``."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from planner.api import ServeResult, ServingCalibration
from planner.calibrate.engine_fit import ServeError
from planner.report.engine import engine_doc
from planner.report.estimate import WEIGHT_ONLY_FP4
from planner.report.speculative import speculative_doc
from planner.units import s_to_ms


def serve_inputs(r: ServeResult) -> dict[str, Any]:
    q = r.request
    inputs: dict[str, Any] = {
        "model": r.model.id,
        "engine": engine_doc(r.engine),
        "precision": q.precision,
        "mode": q.mode,
        "isl_tokens": q.isl,
        "osl_tokens": q.osl,
        "concurrency": q.concurrency,
    }
    if q.mode == "aggregated":
        inputs.update({"gpu": r.replicas[0][1].id, "tp": q.tp, "replicas": q.replicas})
        inputs.update(_layout("", q.attention_dp, q.moe_ep))
    else:
        inputs.update(
            {
                "prefill_gpu": r.replicas[0][1].id,
                "prefill_tp": q.prefill_tp,
                "prefill_workers": q.prefill_workers,
                "decode_gpu": r.replicas[1][1].id,
                "decode_tp": q.decode_tp,
                "decode_workers": q.decode_workers,
                "link": q.link,
            }
        )
        inputs.update(_layout("prefill_", q.prefill_attention_dp, q.prefill_moe_ep))
        inputs.update(_layout("decode_", q.decode_attention_dp, q.decode_moe_ep))
    if r.speculative is not None:
        inputs["speculative"] = speculative_doc(r.speculative)
    return inputs


def _layout(prefix: str, attention_dp: int, moe_ep: int) -> dict[str, int]:
    """Data-parallel attention and expert parallelism, where used (plain tensor parallelism adds no keys)."""
    out = {f"{prefix}attention_dp": attention_dp} if attention_dp > 1 else {}
    return out | ({f"{prefix}moe_ep": moe_ep} if moe_ep > 1 else {})


def _quantiles_ms(mean_s: float, p50_s: float, p99_s: float) -> dict[str, float]:
    return {"mean": s_to_ms(mean_s), "p50": s_to_ms(p50_s), "p99": s_to_ms(p99_s)}


def serve_data(r: ServeResult) -> dict[str, Any]:
    p = r.point
    data = {
        "ttft_ms": _quantiles_ms(p.ttft.mean_s, p.ttft.p50_s, p.ttft.p99_s),
        "tpot_ms": _quantiles_ms(p.tpot.mean_s, p.tpot.p50_s, p.tpot.p99_s),
        "requests_per_s": p.requests_per_s,
        "output_tokens_per_s": p.output_tokens_per_s,
        "output_tokens_per_s_per_gpu": p.output_tokens_per_s_per_gpu,
        "output_tokens_per_s_per_user": p.output_tokens_per_s_per_user,
        "num_gpus": p.num_gpus,
        "decode_batch": p.decode_batch,
        "running_limit": p.running_limit,
        "chunk_frac": p.chunk_frac,
        "admission_wait_ms": s_to_ms(p.admission_wait_s),
        "factors": [
            {
                "role": role,
                "gpu": gpu.id,
                "tp": tp,
                "precision_set": eff.precision_set(r.request.precision),
                "fitted_on": eff.for_precision(r.request.precision).fitted_on,
                "transferred_from": eff.transferred_from,
            }
            for role, gpu, tp, eff in r.replicas
        ],
    }
    if r.speculative is not None:  # what a decode iteration emits (inputs.speculative has the settings)
        data["tokens_per_step"] = r.speculative.tokens_per_step
    return data


def serve_warnings(r: ServeResult) -> list[str]:
    out = list(r.speculative.warnings) if r.speculative is not None else []
    for role, gpu, _tp, eff in r.replicas:
        if eff.transferred_from:
            out.append(
                f"{role}: {gpu.id} has no {r.engine.id} measurements of its own; its factors are those of "
                f"{eff.transferred_from} ({eff.for_precision(r.request.precision).fitted_on})"
            )
        used = eff.precision_set(r.request.precision)
        if r.request.precision == "fp4" and gpu.fp4_flop_per_s is None:
            out.append(f"{role}: " + WEIGHT_ONLY_FP4.format(gpu=gpu.id))
        elif used != r.request.precision:
            out.append(
                f"{role}: no {r.request.precision} factor set for {gpu.id} under {r.engine.id}: the {used} factors are used"
            )
    if r.point.admission_wait_s > 0:
        out.append(
            f"only {r.point.running_limit} sequences fit one replica (scheduler cap or KV cache): the other clients wait "
            f"{s_to_ms(r.point.admission_wait_s):.0f} ms on average to be admitted (in the TTFT)"
        )
    if r.request.mode == "disaggregated" and r.request.link is None:
        out.append("no --link given: the KV transfer from prefill to decode workers is not modelled")
    return out


def grid_row(r: ServeResult) -> dict[str, Any]:
    """One flat row of a ``--grid`` result: the point's inputs and what it measures."""
    q, p = r.request, r.point
    return {
        "model": r.model.id,
        "engine": r.engine.label,
        "precision": q.precision,
        "mode": q.mode,
        "gpu": q.gpu if q.mode == "aggregated" else f"{q.prefill_gpu}/{q.decode_gpu}",
        "tp": q.tp if q.mode == "aggregated" else f"{q.prefill_tp}/{q.decode_tp}",
        "isl_tokens": q.isl,
        "osl_tokens": q.osl,
        "concurrency": q.concurrency,
        "ttft_mean_ms": s_to_ms(p.ttft.mean_s),
        "ttft_p99_ms": s_to_ms(p.ttft.p99_s),
        "tpot_mean_ms": s_to_ms(p.tpot.mean_s),
        "tpot_p99_ms": s_to_ms(p.tpot.p99_s),
        "requests_per_s": p.requests_per_s,
        "output_tokens_per_s_per_gpu": p.output_tokens_per_s_per_gpu,
        "output_tokens_per_s_per_user": p.output_tokens_per_s_per_user,
    }


def grid_rows(results: Sequence[ServeResult]) -> list[dict[str, Any]]:
    """:func:`grid_row` of every point; when any point speculates, every row gains ``speculative`` (its
    ``METHOD:K:A``, empty for the others) and ``tokens_per_step`` (1 for the others), so the CSV stays rectangular."""
    rows = [grid_row(r) for r in results]
    if any(r.speculative is not None for r in results):
        for row, r in zip(rows, results, strict=True):
            sp = r.speculative
            row["speculative"] = "" if sp is None else f"{sp.method}:{sp.draft_tokens}:{sp.acceptance_rate:g}"
            row["tokens_per_step"] = 1.0 if sp is None else sp.tokens_per_step
    return rows


def serve_table(r: ServeResult) -> Table:
    d, q = serve_data(r), r.request
    where = (
        f"{q.tp}x {q.gpu}" + (f" x {q.replicas} replicas" if q.replicas > 1 else "")
        if q.mode == "aggregated"
        else f"{q.prefill_workers}x ({q.prefill_tp}x {q.prefill_gpu}) prefill"
        f" + {q.decode_workers}x ({q.decode_tp}x {q.decode_gpu}) decode"
    )
    t = Table(
        title=f"serve: {r.model.id} ({q.precision}) on {where}, {r.engine.name} {r.engine.version}, "
        f"ISL {q.isl} / OSL {q.osl} at concurrency {q.concurrency}"
    )
    t.add_column("metric")
    t.add_column("mean", justify="right")
    t.add_column("p50", justify="right")
    t.add_column("p99", justify="right")
    for name, key in (("TTFT (ms)", "ttft_ms"), ("TPOT (ms)", "tpot_ms")):
        t.add_row(name, *(f"{d[key][k]:.1f}" for k in ("mean", "p50", "p99")))
    t.add_row("requests/s", f"{d['requests_per_s']:.3f}", "", "")
    t.add_row("output tokens/s per GPU", f"{d['output_tokens_per_s_per_gpu']:.1f}", "", "")
    t.add_row("output tokens/s per user", f"{d['output_tokens_per_s_per_user']:.1f}", "", "")
    if r.speculative is not None:
        t.add_row("tokens per decode iteration", f"{d['tokens_per_step']:.3f}", "", "")
    t.add_row("decode batch (mean)", f"{d['decode_batch']:.1f}", "", "")
    t.add_row("sequences admitted (limit)", f"{d['running_limit']}", "", "")
    return t


def grid_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title=f"serve: {len(rows)} points")
    keys = list(rows[0]) if rows else []
    for k in keys:
        t.add_column(k, justify="left" if k in ("model", "engine", "precision", "mode", "gpu") else "right")
    for row in rows:
        t.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()))
    return t


def _errs(errors: tuple[ServeError, ...]) -> dict[str, Any]:
    def med(vals: list[float]) -> float | None:
        return statistics.median(abs(v) for v in vals) if vals else None

    return {
        "rows": len(errors),
        "ttft_median_abs_error_frac": med([e.ttft_rel_error for e in errors]),
        "tpot_median_abs_error_frac": med([e.tpot_rel_error for e in errors]),
    }


def serving_fit_data(cal: ServingCalibration) -> dict[str, Any]:
    skipped: dict[str, int] = {}
    for _row, why in cal.skipped:
        skipped[why] = skipped.get(why, 0) + 1
    return {
        "engine": engine_doc(cal.engine),
        "overheads": dict(cal.overheads),
        "fitted_on": cal.fitted_on,
        "train": _errs(cal.train),
        "held_out": _errs(cal.held_out),
        "skipped": dict(sorted(skipped.items())),
    }


def serving_fit_table(cal: ServingCalibration) -> Table:
    d = serving_fit_data(cal)
    t = Table(title=f"{cal.engine.name} {cal.engine.version}: overheads fitted on the training split")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for name, value in d["overheads"].items():
        t.add_row(name, f"{1000 * value:.3f} ms" if name.endswith("_s") else f"{value:.3f}")
    for split in ("train", "held_out"):
        e = d[split]
        for what in ("ttft", "tpot"):
            v = e[f"{what}_median_abs_error_frac"]
            t.add_row(f"{split} {what.upper()} median |error| ({e['rows']} rows)", "-" if v is None else f"{100 * v:.1f} %")
    for why, n in d["skipped"].items():
        t.add_row(f"not represented: {why}", str(n))
    return t
