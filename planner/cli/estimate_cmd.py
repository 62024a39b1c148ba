"""``planner estimate prefill|decode``: one step of one replica."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import typer

from planner.cli._common import (
    CatalogDirOpt,
    EngineOpt,
    Format,
    FormatOpt,
    OutputOpt,
    err_console,
    flat_rows,
    output_document,
    with_line,
)

app = typer.Typer(help="Latency, throughput, bound, MFU/MBU and memory fit of one prefill or decode step.", no_args_is_help=True)


class PrecisionOpt(StrEnum):
    bf16 = "bf16"
    fp8 = "fp8"
    fp4 = "fp4"


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model id (e.g. llama-3.1-70b).")]
GpuOpt = Annotated[str, typer.Option("--gpu", "-g", help="GPU id (e.g. h100-sxm).")]
TpOpt = Annotated[int, typer.Option("--tp", help="Tensor-parallel degree (1, 2, 4, 8).")]
PrecOpt = Annotated[
    PrecisionOpt,
    typer.Option("--precision", help="Weight precision (fp4: NVFP4 weights, fp8 KV cache; Blackwell).", case_sensitive=False),
]


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
    engine: str | None = None,
) -> None:
    from planner.api.estimate import EstimateOptions, run_estimate
    from planner.report.engine import engine_line, with_engine_column
    from planner.report.envelope import envelope
    from planner.report.estimate import estimate_data, estimate_table

    options = EstimateOptions(
        phase=phase,
        model=model,
        gpu=gpu,
        tp=tp,
        precision=precision.value,
        tokens=tokens,
        batch=batch,
        context=context,
        engine=engine,
        catalog_dirs=tuple(catalog_dir or ()),
    )
    run = run_estimate(options)
    result = run.result
    doc = envelope(run.command, "ok", run.inputs, estimate_data(result), run.warnings)
    if fmt is Format.table:
        for w in run.warnings:
            err_console().print(f"warning: {w}", markup=False)
    output_document(
        doc,
        fmt,
        output,
        table=with_line(estimate_table(result), engine_line(result.engine)),
        csv_rows=with_engine_column([flat_rows(doc["data"])], result.engine),
    )


from pathlib import Path  # noqa: E402  (typer reads annotations at runtime)


@app.command()
def prefill(
    model: ModelOpt,
    gpu: GpuOpt,
    tp: TpOpt,
    tokens: Annotated[int, typer.Option("--tokens", help="Prompt length in tokens.")],
    batch: Annotated[int, typer.Option("--batch", help="Prompts processed together in one step.")] = 1,
    precision: PrecOpt = PrecisionOpt.bf16,
    engine: EngineOpt = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """One prefill step: BATCH prompts of TOKENS tokens."""
    _run("prefill", model, gpu, tp, precision, tokens, batch, None, catalog_dir, fmt, output, engine)


@app.command()
def decode(
    model: ModelOpt,
    gpu: GpuOpt,
    tp: TpOpt,
    batch: Annotated[int, typer.Option("--batch", help="Sequences decoded together.")],
    context: Annotated[int, typer.Option("--context", help="Context length of each sequence, in tokens.")],
    precision: PrecOpt = PrecisionOpt.bf16,
    engine: EngineOpt = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """One decode step: one token for each of BATCH sequences at CONTEXT tokens."""
    _run("decode", model, gpu, tp, precision, None, batch, context, catalog_dir, fmt, output, engine)


class ModeOpt(StrEnum):
    aggregated = "aggregated"
    disaggregated = "disaggregated"


ADP_HELP = "Data-parallel attention groups in a replica of --tp GPUs (SGLang --dp with --enable-dp-attention)."
EP_HELP = "Expert-parallel groups of an MoE model's routed experts over the replica's GPUs (e.g. --moe-ep 8 at --tp 8)."


@app.command()
def serve(
    model: ModelOpt,
    isl: Annotated[int | None, typer.Option("--isl", help="Prompt tokens per request.")] = None,
    osl: Annotated[int | None, typer.Option("--osl", help="Output tokens per request.")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Clients in a closed loop.")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", "-g", help="GPU id (aggregated mode).")] = None,
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel degree of a replica (aggregated mode).")] = 1,
    replicas: Annotated[int, typer.Option("--replicas", help="Replicas the clients are spread over (aggregated).")] = 1,
    attention_dp: Annotated[int, typer.Option("--attention-dp", help=ADP_HELP)] = 1,
    moe_ep: Annotated[int, typer.Option("--moe-ep", help=EP_HELP)] = 1,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="Serving engine profile (vllm, sglang, trtllm, pytorch, splitwise); NAME@VERSION pins it."),
    ] = None,
    precision: PrecOpt = PrecisionOpt.bf16,
    mode: Annotated[ModeOpt, typer.Option("--mode", help="One engine for both phases, or prefill and decode workers.")] = (
        ModeOpt.aggregated
    ),
    prefill_gpu: Annotated[str | None, typer.Option("--prefill-gpu", help="Prefill workers' GPU (disaggregated).")] = None,
    prefill_tp: Annotated[int, typer.Option("--prefill-tp", help="TP of a prefill worker.")] = 1,
    prefill_workers: Annotated[int, typer.Option("--prefill-workers", help="Prefill workers.")] = 1,
    prefill_attention_dp: Annotated[int, typer.Option("--prefill-attention-dp", help="--attention-dp of a prefill worker.")] = 1,
    prefill_moe_ep: Annotated[int, typer.Option("--prefill-moe-ep", help="--moe-ep of a prefill worker.")] = 1,
    decode_gpu: Annotated[str | None, typer.Option("--decode-gpu", help="Decode workers' GPU (disaggregated).")] = None,
    decode_tp: Annotated[int, typer.Option("--decode-tp", help="TP of a decode worker.")] = 1,
    decode_workers: Annotated[int, typer.Option("--decode-workers", help="Decode workers.")] = 1,
    decode_attention_dp: Annotated[int, typer.Option("--decode-attention-dp", help="--attention-dp of a decode worker.")] = 1,
    decode_moe_ep: Annotated[int, typer.Option("--decode-moe-ep", help="--moe-ep of a decode worker.")] = 1,
    link: Annotated[
        str | None, typer.Option("--link", help="Link the KV cache crosses (disaggregated; default: not modelled).")
    ] = None,
    speculative: Annotated[
        str | None,
        typer.Option(
            "--speculative",
            help="Speculative decoding METHOD[:K[:A]] (mtp, eagle, ngram; K draft tokens, A per-token acceptance); "
            "what is left out takes the method's published default (catalogs/speculative.yaml).",
        ),
    ] = None,
    grid: Annotated[
        Path | None,
        typer.Option(
            "--grid", help="CSV of points (columns named as these options); blank cells take the flags.", dir_okay=False
        ),
    ] = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """What a fixed-concurrency benchmark measures: TTFT and TPOT (mean, p50, p99), requests/s and
    output tokens/s per GPU and per user, for CONCURRENCY clients in a closed loop (vLLM bench serve
    --max-concurrency, aiperf, InferenceMAX)."""
    from planner.api.serve import ServeOptions, run_serve
    from planner.report.envelope import envelope
    from planner.report.serve import grid_rows, grid_table, serve_data, serve_table
    from planner.report.speculative import speculative_line

    if grid is None:
        for name, value in (("isl", isl), ("osl", osl), ("concurrency", concurrency)):
            if value is None:
                raise typer.BadParameter(f"--{name} is required (or give a --grid file)", param_hint=f"--{name}")
    options = ServeOptions(
        model=model,
        isl=isl,
        osl=osl,
        concurrency=concurrency,
        gpu=gpu,
        tp=tp,
        attention_dp=attention_dp,
        moe_ep=moe_ep,
        replicas=replicas,
        engine=engine,
        precision=precision.value,
        mode=mode.value,
        prefill_gpu=prefill_gpu,
        prefill_tp=prefill_tp,
        prefill_workers=prefill_workers,
        prefill_attention_dp=prefill_attention_dp,
        prefill_moe_ep=prefill_moe_ep,
        decode_gpu=decode_gpu,
        decode_tp=decode_tp,
        decode_workers=decode_workers,
        decode_attention_dp=decode_attention_dp,
        decode_moe_ep=decode_moe_ep,
        link=link,
        speculative=speculative,
        grid=grid,
        catalog_dirs=tuple(catalog_dir or ()),
    )
    run = run_serve(options)
    if grid is None:
        result = run.result
        doc = envelope("estimate serve", "ok", run.inputs, serve_data(result), run.warnings)
        if fmt is Format.table:
            for w in run.warnings:
                err_console().print(f"warning: {w}")
        table = serve_table(result)
        output_document(
            doc,
            fmt,
            output,
            table=table if result.speculative is None else with_line(table, speculative_line(result.speculative)),
        )
        return
    rows = grid_rows(run.results)
    doc = envelope("estimate serve", "ok", run.inputs, {"points": rows}, run.warnings)
    output_document(doc, fmt, output, table=grid_table(rows), csv_rows=rows, inputs=run.input_paths)
