"""Options shared by every command, and output helpers."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.text import Text

from planner.io.output import emit, yaml_text
from planner.report.envelope import to_json


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    markdown = "markdown"


CatalogDirOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--catalog-dir",
        help="Extra catalog directory (extends or overrides the built-in catalogs; repeatable).",
        envvar=None,
        file_okay=False,
    ),
]
ENGINE_HELP = "Serving engine profile (vllm, sglang, trtllm, pytorch, splitwise; default vllm); NAME@VERSION pins the release."
EngineOpt = Annotated[str | None, typer.Option("--engine", help=ENGINE_HELP, metavar="NAME[@VERSION]")]
SizeEngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help=ENGINE_HELP[:-1] + "; 'auto' or a comma list (vllm,sglang,trtllm) sizes under each and reports the cheapest "
        "plan with every engine's cost (auto: every engine but the reference profiles pytorch and splitwise).",
        metavar="NAME[@VERSION]|auto|LIST",
    ),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the result to this file (atomically) instead of stdout.", dir_okay=False),
]


def render_rich(renderable: RenderableType, width: int = 110) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, color_system=None, highlight=False, emoji=False).print(renderable)
    return buf.getvalue()


def with_line(table: RenderableType | str, line: str) -> RenderableType | str:
    """A table (rich renderable or laid-out text) with one plain line above it (``engine: ...``)."""
    if isinstance(table, str):
        return f"{line}\n{table}"
    return Group(Text(line), table)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)


def flat_rows(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict → one flat row with dotted keys (CSV of a single result)."""
    row: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            row.update(flat_rows(value, f"{name}."))
        elif isinstance(value, list):
            continue
        else:
            row[name] = value
    return row


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def output_document(
    doc: dict[str, Any],
    fmt: Format,
    output: Path | None,
    table: RenderableType | str | None = None,
    markdown: str | None = None,
    csv_rows: list[dict[str, Any]] | None = None,
    inputs: tuple[Path, ...] = (),
) -> None:
    if fmt is Format.json:
        text = to_json(doc)
    elif fmt is Format.yaml:
        text = yaml_text(doc)
    elif fmt is Format.csv:
        text = to_csv(csv_rows if csv_rows is not None else [flat_rows(doc["data"])])
    elif fmt is Format.markdown:
        text = markdown if markdown is not None else "```\n" + to_json(doc) + "```\n"
    else:
        # a str is already laid out (and must not be read as rich markup)
        text = to_json(doc) if table is None else table if isinstance(table, str) else render_rich(table)
    emit(text, output, inputs=inputs)
