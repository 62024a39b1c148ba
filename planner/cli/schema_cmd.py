"""``planner schema``: JSON Schema of the documents planner reads."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from planner.cli._common import OutputOpt


class Document(StrEnum):
    workload = "workload"
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
    from planner.io.catalog import FILES
    from planner.io.output import emit
    from planner.io.workload import WorkloadSpec

    model = WorkloadSpec if document is Document.workload else FILES[document.value]
    text = json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
    emit(text, output)
