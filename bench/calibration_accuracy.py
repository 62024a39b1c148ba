"""How well the fitted performance core predicts the GPU measurements shipped in the repository.

    python bench/calibration_accuracy.py

For the `planner calibrate run` measurements (H100 TP 1/2/4 and H200 TP 1/2 on NVLink4, bf16 and fp8)
it prints, per factor set: the in-sample error of `planner calibrate fit`, the 5-fold held-out
error, and three transfers that a user relies on without measuring:

- bf16 factors predicting fp8 steps (what a GPU without fp8 measurements gets),
- the H100's factors predicting the H200 (what the catalog's `transferred_from` assumes),
- a repeat of the TP-1 bf16 steps on a second host (run-to-run spread).

Not a test: a report (tests/test_calibrate_run.py bounds the same figures).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from planner import api
from planner.calibrate.stepfit import predict_s
from planner.domain import Catalog, Efficiency, Measurement
from planner.io.measurements import read_measurements
from planner.perf.roofline import Hardware

ROOT = Path(__file__).resolve().parent.parent
H100 = ROOT / "catalogs" / "measurements" / "h100-torch"
H200 = ROOT / "catalogs" / "measurements" / "h200-torch"


def errors(rows: Iterable[Measurement], catalog: Catalog, eff: Efficiency, gpu: str) -> np.ndarray:
    g = catalog.gpus[gpu]
    out = []
    for m in rows:
        hw = Hardware(g, eff, api.hardware(catalog, g, m.tp).intra_node_bytes_per_s)
        out.append(predict_s(m, catalog.models[m.model], hw) / m.latency_s - 1.0)
    return np.array(out)


def line(label: str, e: np.ndarray) -> str:
    a = np.abs(e)
    return (
        f"  {label:<52}{len(e):>5}{100 * np.median(a):>9.1f}{100 * a.max():>9.1f}{100 * np.median(e):>+13.1f}"
        if len(e)
        else f"  {label:<52}    0"
    )


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"  {'':<52}{'pts':>5}{'med |e|%':>9}{'worst%':>9}{'med signed%':>13}")


def main() -> None:
    h100_rows = read_measurements(H100 / "measurements.csv")
    h200_rows = read_measurements(H200 / "measurements.csv")
    base = api.load_catalog()

    header("calibrate fit, in sample and 5-fold held out")
    for name, files, dirs in (
        ("H100", [H100 / "measurements.csv"], []),
        ("H200", [H200 / "measurements.csv"], []),
    ):
        result = api.calibrate(files, [], source="bench", as_of="2026-11-27", catalog_dirs=dirs)
        for key, fit in result.fits.items():
            used = [p for p in fit.points if p.excluded is None]
            for tp in sorted({p.measurement.tp for p in used}):
                for phase in ("prefill", "decode"):
                    e = np.array([p.rel_error for p in used if (p.measurement.tp, p.measurement.phase) == (tp, phase)])
                    print(line(f"{name} {key} TP {tp} {phase}", e))
            print(line(f"{name} {key} all", np.array([p.rel_error for p in used])))
            held = result.held_out[key]
            print(f"  {f'{name} {key} held out':<52}{len(held):>5}{100 * np.median(held):>9.1f}{100 * held.max():>9.1f}")

    tuned = api.load_catalog([H100])
    h100 = tuned.efficiency["h100-sxm"]
    header("transfers")
    fp8_rows = [m for m in h100_rows if m.precision == "fp8"]
    print(line("H100 fp8 steps, bf16-fitted factors", errors(fp8_rows, tuned, replace(h100, fp8=None), "h100-sxm")))
    print(line("H100 fp8 steps, fp8-fitted factors", errors(fp8_rows, tuned, h100, "h100-sxm")))
    lent = tuned.efficiency["h200-sxm"]
    for precision in ("bf16", "fp8"):
        rows = [m for m in h200_rows if m.precision == precision]
        print(line(f"H200 {precision} steps, H100 factors (transferred_from)", errors(rows, tuned, lent, "h200-sxm")))
    builtin = base.efficiency["h200-sxm"]
    rows = [m for m in h200_rows if m.precision == "bf16"]
    # engine-level factors (a serving engine's ~17-30 ms of scheduling per step) against bare kernels:
    # the reason factors are fitted per engine
    print(line("H200 bf16 kernels, built-in (serving-engine) factors", errors(rows, base, builtin, "h200-sxm")))

    header("repeatability: TP-1 bf16 steps on two lent H100 hosts")

    def shape(m: Measurement) -> tuple[str, str, int, int, float]:
        return (m.phase, m.model, m.batch, m.tokens, m.context_tokens)

    first = {shape(m): m.latency_s for m in read_measurements(H100 / "repeat-tp1-bf16-run1.csv")}
    second = {shape(m): m.latency_s for m in h100_rows if (m.tp, m.precision) == (1, "bf16")}
    print(line("second run / first run - 1", np.array([second[k] / first[k] - 1 for k in sorted(first)])))


if __name__ == "__main__":
    main()
