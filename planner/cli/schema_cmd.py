"""``planner schema``: JSON Schema of the documents planner reads."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from planner.cli._common import OutputOpt


class Document(StrEnum):  # planner.api.schema.SCHEMA_DOCUMENTS, as typer's choices
    workload = "workload"
    proposal = "proposal"
    gpus = "gpus"
    models = "models"
    links = "links"
    prices = "prices"
    efficiency = "efficiency"


def schema(
    document: Annotated[Document, typer.Argument(help="Which document.", case_sensitive=False)],
    output: OutputOpt = None,
) -> None:
    """Print the JSON Schema of a document (editors use it for completion and validation)."""
    from planner.api.schema import SchemaOptions, run_schema
    from planner.io.output import emit

    emit(run_schema(SchemaOptions(document=document.value)).text, output)
