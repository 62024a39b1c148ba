"""``planner schema``: the JSON Schema of each document planner reads (editors use it for completion and validation)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from planner.errors import InputError

__all__ = ["SCHEMA_DOCUMENTS", "SchemaDocument", "SchemaOptions", "SchemaRun", "document_schema", "run_schema"]

SchemaDocument = Literal["workload", "proposal", "gpus", "models", "links", "prices", "efficiency"]
SCHEMA_DOCUMENTS: tuple[SchemaDocument, ...] = get_args(SchemaDocument)


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaOptions:
    document: str  # one of SCHEMA_DOCUMENTS


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaRun:
    options: SchemaOptions
    schema: dict[str, Any]  # the JSON Schema
    text: str  # as ``planner schema`` prints it: indented, keys sorted, one final newline


def document_schema(document: str) -> dict[str, Any]:
    """The JSON Schema of a workload, proposal or catalog file (``gpus``, ``models``, ``links``, ``prices``,
    ``efficiency``)."""
    from planner.io.catalog import FILES
    from planner.io.proposal import ProposalSpec
    from planner.io.workload import WorkloadSpec

    if document not in SCHEMA_DOCUMENTS:
        raise InputError(f"schema {document}: unknown document; use one of {', '.join(SCHEMA_DOCUMENTS)}")
    if document == "proposal":
        return ProposalSpec.model_json_schema()
    return (WorkloadSpec if document == "workload" else FILES[document]).model_json_schema()


def run_schema(options: SchemaOptions) -> SchemaRun:
    """``planner schema DOCUMENT``: the schema and the text the command prints."""
    doc = document_schema(options.document)
    return SchemaRun(options=options, schema=doc, text=json.dumps(doc, indent=2, sort_keys=True) + "\n")
