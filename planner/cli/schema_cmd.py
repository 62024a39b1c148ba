"""``planner schema``: JSON Schema of the documents planner reads."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from planner.cli._common import OutputOpt, emit_result


class Document(StrEnum):  # planner.api.schema.SCHEMA_DOCUMENTS, as typer's choices
    workload = "workload"
    proposal = "proposal"
    gpus = "gpus"
    models = "models"
    links = "links"
    prices = "prices"
    efficiency = "efficiency"


class SchemaFormat(StrEnum):
    json = "json"
    yaml = "yaml"


def schema(
    document: Annotated[Document, typer.Argument(help="Which document.", case_sensitive=False)],
    fmt: Annotated[
        SchemaFormat,
        typer.Option(
            "--format",
            "-f",
            help="json (the JSON Schema itself, not an envelope) or yaml (the same schema as YAML).",
            case_sensitive=False,
        ),
    ] = SchemaFormat.json,
    output: OutputOpt = None,
) -> None:
    """Print the JSON Schema of a document (editors use it for completion and validation)."""
    from planner.api.schema import SchemaOptions, run_schema
    from planner.io.output import yaml_text

    run = run_schema(SchemaOptions(document=document.value))
    emit_result(run.text if fmt is SchemaFormat.json else yaml_text(run.schema), output)
