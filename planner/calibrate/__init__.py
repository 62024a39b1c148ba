"""Calibration: fitting the performance core to measurements (one package for every fit).

- :mod:`planner.calibrate.stepfit`: efficiency factors from measured step times (``calibrate fit``);
- :mod:`planner.calibrate.opfit`: per-GPU factor sets from per-op kernel tables (``calibrate fit --op-tables``);
- :mod:`planner.calibrate.engine_fit`: an engine's scheduling overheads from served TTFT/TPOT (``--serving``);
- :mod:`planner.calibrate.powerfit`: step-power factors from measured board power;
- :mod:`planner.calibrate.netfit`: a link kind's KV-transfer curve (latency + size / bandwidth) from measured
  transfers (``catalogs/links.yaml`` ``transfer_curves``);
- :mod:`planner.calibrate.microbench` and :mod:`planner.calibrate.powersample`: the GPU measurements
  themselves (``calibrate run``).

The files these fits read are parsed at the edge, in :mod:`planner.io` (measurements, optables, engine_bench,
silicon, power). ``from planner.calibrate import fit`` (the step-time fit's names, as before the package) keeps
working: they are loaded from :mod:`planner.calibrate.stepfit` on first use.
"""

from __future__ import annotations

from typing import Any

_STEPFIT = (
    "PARAMS",
    "GpuFit",
    "PointError",
    "compute_floor_s",
    "decode_runs",
    "describe",
    "fit",
    "fit_gpu",
    "fit_key",
    "held_out_errors",
    "predict_s",
)


def __getattr__(name: str) -> Any:  # the step fit pulls scipy in: only when asked for
    if name in _STEPFIT:
        from planner.calibrate import stepfit

        return getattr(stepfit, name)
    raise AttributeError(f"module 'planner.calibrate' has no attribute {name!r}")
