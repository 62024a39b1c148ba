"""Fit report of ``planner calibrate fit``: factors with uncertainty, error per GPU/TP/phase."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from rich.console import Group
from rich.table import Table

from planner.calibrate.stepfit import PARAMS, GpuFit
from planner.units import s_to_ms


def error_summary(fits: dict[str, GpuFit]) -> list[dict[str, Any]]:
    """One row per (gpu, tp, phase) plus per-gpu and overall rows: count, median and worst |error|."""
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for gpu, f in fits.items():
        for p in f.points:
            if p.excluded is not None:
                continue
            e = abs(p.rel_error)
            m = p.measurement
            for key in ((gpu, str(m.tp), m.phase), (gpu, "all", m.phase), (gpu, "all", "all"), ("all", "all", "all")):
                groups[key].append(e)
    rows = []
    for (gpu, tp, phase), errs in sorted(
        groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0][0], kv[0][1] == "all", kv[0][1].zfill(3), kv[0][2])
    ):
        a = np.array(errs)
        rows.append(
            {
                "gpu": gpu,
                "tp": tp,
                "phase": phase,
                "count": len(errs),
                "median_abs_error_frac": float(np.median(a)),
                "worst_abs_error_frac": float(a.max()),
            }
        )
    return rows


def held_out_rows(held_out: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {"gpu": gpu, "count": len(e), "median_abs_error_frac": float(np.median(e)), "worst_abs_error_frac": float(e.max())}
        for gpu, e in held_out.items()
        if len(e)
    ]


def fit_data(fits: dict[str, GpuFit], held_out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    return {
        "held_out": held_out_rows(held_out or {}),
        "gpus": {
            gpu: {
                "factors": {p: getattr(f.efficiency, p) for p in PARAMS},
                "rel_uncertainty": f.rel_uncertainty,
                "points": [
                    {
                        "origin": pt.measurement.origin,
                        "phase": pt.measurement.phase,
                        "model": pt.measurement.model,
                        "tp": pt.measurement.tp,
                        "batch": pt.measurement.batch,
                        "tokens": pt.measurement.tokens,
                        "context_tokens": pt.measurement.context_tokens,
                        "output_tokens": pt.measurement.output_tokens,
                        "precision": pt.measurement.precision,
                        "measured_ms": s_to_ms(pt.measurement.latency_s),
                        "predicted_ms": s_to_ms(pt.predicted_s),
                        "rel_error": pt.rel_error,
                        "excluded": pt.excluded,
                    }
                    for pt in f.points
                ],
            }
            for gpu, f in fits.items()
        },
        "summary": error_summary(fits),
    }


def fit_table(fits: dict[str, GpuFit], held_out: dict[str, np.ndarray] | None = None) -> Group:
    factors = Table(title="fitted factors (one-sigma relative uncertainty)")
    factors.add_column("factor")
    for gpu in fits:
        factors.add_column(gpu, justify="right")
    for p in PARAMS:
        cells = []
        for f in fits.values():
            v = getattr(f.efficiency, p)
            shown = f"{s_to_ms(v):.4g} ms" if p.endswith("_s") else f"{v:.3f}"
            cells.append(f"{shown} ±{100 * f.rel_uncertainty[p]:.0f}%")
        factors.add_row(p, *cells)
    summary = Table(title="error of the fitted model against the measurements (|predicted/measured - 1|)")
    for col in ("gpu", "tp", "phase", "points"):
        summary.add_column(col)
    summary.add_column("median (%)", justify="right")
    summary.add_column("worst (%)", justify="right")
    for r in error_summary(fits):
        summary.add_row(
            r["gpu"],
            r["tp"],
            r["phase"],
            str(r["count"]),
            f"{100 * r['median_abs_error_frac']:.1f}",
            f"{100 * r['worst_abs_error_frac']:.1f}",
        )
    excluded = [(g, p) for g, f in fits.items() for p in f.points if p.excluded]
    parts: list[Any] = [factors, summary]
    rows = held_out_rows(held_out or {})
    if rows:
        ho = Table(title="held-out error (5-fold cross-validation: each point predicted by a fit without it)")
        for col in ("gpu", "points", "median (%)", "worst (%)"):
            ho.add_column(col, justify="left" if col == "gpu" else "right")
        for r in rows:
            ho.add_row(
                r["gpu"], str(r["count"]), f"{100 * r['median_abs_error_frac']:.1f}", f"{100 * r['worst_abs_error_frac']:.1f}"
            )
        parts.append(ho)
    if excluded:
        ex = Table(title="excluded measurements")
        for col in ("gpu", "origin", "phase", "reason"):
            ex.add_column(col)
        for gpu_id, pt in excluded:
            ex.add_row(gpu_id, pt.measurement.origin, pt.measurement.phase, pt.excluded or "")
        parts.append(ex)
    return Group(*parts)
