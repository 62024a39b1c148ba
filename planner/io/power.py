"""Read the power columns of a measurement CSV (``calibrate run --power``) and the fitted step-power
factors (``catalogs/power.yaml``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pydantic import ValidationError

from planner.domain import PowerFactors, PowerRow
from planner.errors import InputError
from planner.io.catalog import format_validation_error, power_table
from planner.io.measurements import _number, read_measurements
from planner.io.schemas import PowerFile
from planner.io.yamlio import loads, read_text

POWER_COLUMNS = ("power_mean_w", "power_peak_w", "power_samples")


def read_power_header(path: Path) -> dict[str, str]:
    """The ``key=value`` fields of the file's ``# power:`` line (idle watts, NVML version, sampling);
    empty for a file without one."""
    for line in read_text(path).splitlines():
        if line.startswith("# power:"):
            return dict(tok.split("=", 1) for tok in line[len("# power:") :].split() if "=" in tok)
    return {}


def read_power_rows(path: Path) -> list[PowerRow]:
    """See :func:`_read_power_rows`; a malformed CSV (a field over the ``csv`` module's 128 KiB limit) is an InputError."""
    try:
        return _read_power_rows(path)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None


def _read_power_rows(path: Path) -> list[PowerRow]:
    """The steps of a measurement CSV that carry board power. A file without the power columns (an
    older ``calibrate run``) gives none; rows with empty power cells are skipped."""
    steps = read_measurements(path)  # validates the step columns
    text = read_text(path)
    lines = ["" if ln.lstrip().startswith("#") else ln for ln in text.splitlines()]
    header_at = next(i for i, ln in enumerate(lines) if ln.strip())
    reader = csv.reader(io.StringIO("\n".join(lines[header_at:])))
    fields = [c.strip() for c in next(reader)]
    if not all(c in fields for c in POWER_COLUMNS):
        return []
    power: dict[int, tuple[str, str, str]] = {}
    for cells in reader:
        if cells and any(c.strip() for c in cells):
            row = dict(zip(fields, cells, strict=True))
            power[header_at + reader.line_num] = (row["power_mean_w"], row["power_peak_w"], row["power_samples"])
    out = []
    for m in steps:
        line = int(m.origin.rsplit(":", 1)[1])
        mean, peak, samples = (c.strip() for c in power[line])
        if not mean:
            continue
        values = [_number(v, m.origin, c) for v, c in zip((mean, peak, samples), POWER_COLUMNS, strict=True)]
        if values[0] <= 0 or values[1] < values[0]:
            raise InputError(f"{m.origin}: power_mean_w must be positive and at most power_peak_w")
        out.append(PowerRow(step=m, mean_w=values[0], peak_w=values[1], samples=int(values[2])))
    return out


def read_power_factors(path: Path) -> dict[str, PowerFactors]:
    """``catalogs/power.yaml``: the step-power factors per GPU id as written (fitted, or lent by the
    GPU named in ``transferred_from``)."""
    text = read_text(path)
    try:
        doc = PowerFile.model_validate(loads(text, str(path)))
    except ValidationError as exc:
        raise InputError(format_validation_error(path, text, exc)) from None
    return power_table({gpu: (f"{path}: gpus.{gpu}", e) for gpu, e in doc.gpus.items()})
