"""Scenario files of ``planner sweep --scenarios FILE``: a listed set of named scenarios, each a mapping of
variable -> value (the variables of ``--vary``: ``rate_rps``, ``price:GPU``, a dotted path into the workload).

YAML: a list of mappings (or a mapping with the list under ``scenarios``), each with a ``name`` and the variables
it sets::

    scenarios:
      - {name: today, classes.chat.rate_rps: 20}
      - {name: growth, classes.chat.rate_rps: 40, constraints.max_gpus.h100-sxm: 128}
      - {name: sglang, engine: sglang, hardware.decode_gpus: [h100-sxm]}

CSV: a header ``name,VAR,VAR,...`` and one scenario a row; an empty cell leaves that variable as the document
has it; a list of ids is written ``a|b``. Errors name the file and the line of the scenario.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.io.sources import read_source
from planner.io.yamlio import find_line, loads

__all__ = ["MAX_SCENARIOS", "Scenario", "read_scenarios"]

MAX_SCENARIOS = 10_000

# (variable name, the value as written (text from CSV, a typed value from YAML), where) -> (canonical name, value)
SettingParser = Callable[[str, Any, str], tuple[str, Any]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    settings: tuple[tuple[str, Any], ...]  # (canonical variable, value), in the order written
    line: int  # of the file, 1-based


def read_scenarios(path: Path, parse: SettingParser) -> tuple[tuple[Scenario, ...], str]:
    """The scenarios of ``path`` (``.yaml``/``.yml`` or ``.csv``) and the file's SHA-256."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".csv"):
        raise InputError(f"--scenarios {path}: use a .yaml, .yml or .csv file")
    source = read_source(path, "CSV" if suffix == ".csv" else "YAML")
    rows = _csv_rows(path, source.text) if suffix == ".csv" else _yaml_rows(path, source.text)
    if not rows:
        raise InputError(f"{path}: no scenarios")
    if len(rows) > MAX_SCENARIOS:
        raise InputError(f"{path}: {len(rows):,} scenarios; at most {MAX_SCENARIOS:,}")
    out: list[Scenario] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        where = f"{path}:{line}"
        name = row.get("name")
        if isinstance(name, int) and not isinstance(name, bool):
            name = str(name)  # name: 2027 in YAML
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}: a scenario needs a name")
        name = name.strip()
        if any(ord(ch) < 32 for ch in name) or len(name) > 128:
            raise InputError(f"{where}: a scenario name is one line of at most 128 characters")
        if name in seen:
            raise InputError(f"{where}: scenario {name!r} is named twice (first at line {seen[name]})")
        seen[name] = line
        settings: list[tuple[str, Any]] = []
        names: set[str] = set()
        for key, value in row.items():
            if key == "name" or (isinstance(value, str) and not value.strip() and suffix == ".csv"):
                continue
            canon, parsed = parse(str(key).strip(), value, f"{where}: scenario {name}")
            if canon in names:
                raise InputError(f"{where}: scenario {name}: {key} is set twice")
            names.add(canon)
            settings.append((canon, parsed))
        out.append(Scenario(name=name, settings=tuple(settings), line=line))
    return tuple(out), source.sha256


def _yaml_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    doc = loads(text, str(path))
    prefix: tuple[str | int, ...] = ()
    if isinstance(doc, dict) and set(doc) == {"scenarios"}:
        doc, prefix = doc["scenarios"], ("scenarios",)
    if not isinstance(doc, list):
        raise InputError(f"{path}: a scenario file is a list of mappings (or scenarios: [a list]), each with a name")
    rows = []
    for i, item in enumerate(doc):
        line = find_line(text, (*prefix, i)) or 1
        if not isinstance(item, dict):
            raise InputError(f"{path}:{line}: a scenario is a mapping with a name and the variables it sets")
        rows.append((line, {str(k): v for k, v in item.items()}))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path}: empty CSV (expected a header name,VARIABLE,...)") from None
    except csv.Error as exc:
        raise InputError(f"{path}:1: invalid CSV ({exc})") from None
    header = [h.strip() for h in header]
    if "name" not in header:
        raise InputError(f"{path}:1: the header needs a name column (name,VARIABLE,...)")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup or any(not h for h in header):
        raise InputError(f"{path}:1: " + (f"column {dup[0]!r} is named twice" if dup else "an empty column name"))
    rows = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: invalid CSV ({exc})") from None
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise InputError(f"{path}:{reader.line_num}: {len(cells)} cells; the header has {len(header)}")
        rows.append((reader.line_num, dict(zip(header, cells, strict=True))))
    return rows
