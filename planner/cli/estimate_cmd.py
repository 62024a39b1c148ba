"""``planner estimate prefill|decode``: one step of one replica."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import typer

from planner.cli._common import CatalogDirOpt, Format, FormatOpt, OutputOpt, err_console, output_document

app = typer.Typer(help="Latency, throughput, bound, MFU/MBU and memory fit of one prefill or decode step.", no_args_is_help=True)


class PrecisionOpt(StrEnum):
    bf16 = "bf16"
    fp8 = "fp8"


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model id (e.g. llama-3.1-70b).")]
GpuOpt = Annotated[str, typer.Option("--gpu", "-g", help="GPU id (e.g. h100-sxm).")]
TpOpt = Annotated[int, typer.Option("--tp", help="Tensor-parallel degree (1, 2, 4, 8).")]
PrecOpt = Annotated[PrecisionOpt, typer.Option("--precision", help="Weight/KV precision.", case_sensitive=False)]


def _run(
    phase: Literal["prefill", "decode"],
    model: str,
    gpu: str,
    tp: int,
    precision: PrecisionOpt,
    tokens: int | None,
    batch: int,
    context: int | None,
    catalog_dir: list[Path] | None,
    fmt: Format,
    output: Path | None,
) -> None:
    from planner import api
    from planner.report.envelope import envelope
    from planner.report.estimate import estimate_data, estimate_inputs, estimate_table, estimate_warnings

    result = api.estimate(
        phase,
        model=model,
        gpu=gpu,
        tp=tp,
        precision=precision.value,
        tokens=tokens,  # type: ignore[arg-type]
        batch=batch,
        context=context,
        catalog_dirs=catalog_dir or (),
    )
    warnings = estimate_warnings(result)
    doc = envelope(f"estimate {phase}", "ok", estimate_inputs(result), estimate_data(result), warnings)
    if fmt is Format.table:
        for w in warnings:
            err_console().print(f"warning: {w}")
    output_document(doc, fmt, output, table=estimate_table(result))


from pathlib import Path  # noqa: E402  (typer reads annotations at runtime)


@app.command()
def prefill(
    model: ModelOpt,
    gpu: GpuOpt,
    tp: TpOpt,
    tokens: Annotated[int, typer.Option("--tokens", help="Prompt length in tokens.")],
    batch: Annotated[int, typer.Option("--batch", help="Prompts processed together in one step.")] = 1,
    precision: PrecOpt = PrecisionOpt.bf16,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """One prefill step: BATCH prompts of TOKENS tokens."""
    _run("prefill", model, gpu, tp, precision, tokens, batch, None, catalog_dir, fmt, output)


@app.command()
def decode(
    model: ModelOpt,
    gpu: GpuOpt,
    tp: TpOpt,
    batch: Annotated[int, typer.Option("--batch", help="Sequences decoded together.")],
    context: Annotated[int, typer.Option("--context", help="Context length of each sequence, in tokens.")],
    precision: PrecOpt = PrecisionOpt.bf16,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """One decode step: one token for each of BATCH sequences at CONTEXT tokens."""
    _run("decode", model, gpu, tp, precision, None, batch, context, catalog_dir, fmt, output)
