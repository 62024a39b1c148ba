"""``planner schema``: JSON Schema of the documents planner reads."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from planner.cli._common import OutputOpt


class Document(StrEnum):
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
    from planner.io.catalog import FILES
    from planner.io.output import emit
    from planner.io.proposal import ProposalSpec
    from planner.io.workload import WorkloadSpec

    if document is Document.proposal:
        schema_doc = ProposalSpec.model_json_schema()
    else:
        schema_doc = (WorkloadSpec if document is Document.workload else FILES[document.value]).model_json_schema()
    text = json.dumps(schema_doc, indent=2, sort_keys=True) + "\n"
    emit(text, output)
