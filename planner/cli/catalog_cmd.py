"""``planner catalog list|show|validate|import-model``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from planner.cli._common import CatalogDirOpt, Format, FormatOpt, OutputOpt, output_document

if TYPE_CHECKING:
    from planner.api.catalog import CatalogListRun, CatalogShowRun, CatalogValidateRun

app = typer.Typer(help="Browse and validate the GPU, model, link and price catalogs.", no_args_is_help=True)


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Argument(help="gpus, models, links or engines (default: all).")] = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """List catalog entries."""
    from planner.api.catalog import CatalogListOptions, run_catalog_list
    from planner.report.envelope import envelope

    run = run_catalog_list(CatalogListOptions(kind=kind, catalog_dirs=tuple(catalog_dir or ())))
    doc = envelope("catalog list", "ok", run.inputs, run.data)
    rows = [{"kind": k, **row} for k in run.kinds for row in run.data[k]]
    output_document(doc, fmt, output, table=_list_tables(run), csv_rows=rows)


def _list_tables(run: CatalogListRun) -> Any:
    from rich.console import Group

    from planner.report.engine import engine_list_table

    tables: list[Any] = []
    for k in run.kinds:
        if k == "engines":
            tables.append(engine_list_table(run.data[k]))
            continue
        t = Table(title=k)
        t.add_column("id")
        t.add_column("name")
        t.add_column("summary")
        for e in getattr(run.catalog, k).values():
            t.add_row(e.id, e.name, _summary(k, e, run.catalog))
        tables.append(t)
    return Group(*tables)


def _summary(kind: str, e: Any, cat: Any) -> str:
    if kind == "gpus":
        price = cat.default_price(e.id)
        others = [f"{r.provider} ${r.usd_per_gpu_hour:.2f}" for r in cat.prices if r.gpu == e.id and not r.default]
        p = f"${price.usd_per_gpu_hour:.2f}/GPU-h ({price.provider})" if price else "no price"
        if price is None and others:
            p = f"no default price ({', '.join(others)}/GPU-h with pricing.provider)"
        fp8 = "fp8" if e.fp8_flop_per_s else "no fp8"
        mem = f"{e.hbm_capacity_bytes / 2**30:.0f} GiB, {e.hbm_bandwidth_bytes_per_s / 1e9:.0f} GB/s"
        return f"{e.bf16_flop_per_s / 1e12:.0f} TFLOP/s bf16, {mem}, {fp8}, {p}"
    if kind == "models":
        moe = f", MoE {e.num_experts}x top-{e.experts_per_token}" if e.is_moe else ""
        hf = f", {e.hf_id}" if e.hf_id else ""
        return f"{e.num_params / 1e9:.1f}B params ({e.num_active_params / 1e9:.1f}B active){moe}, {e.num_layers} layers{hf}"
    return f"{e.kind}, {e.scope}, {e.bandwidth_bytes_per_s * 8 / 1e9:.0f} Gbit/s per direction"


@app.command()
def show(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="A GPU, model, link or engine id.")],
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Every figure of one entry with its source."""
    from planner.api.catalog import CatalogShowOptions, run_catalog_show
    from planner.report.engine import engine_show_table
    from planner.report.envelope import envelope

    run = run_catalog_show(CatalogShowOptions(entry_id=entry_id, catalog_dirs=tuple(catalog_dir or ())))
    doc = envelope("catalog show", "ok", run.inputs, run.data)
    table = engine_show_table(run.data) if run.kind == "engines" else _show_table(run)
    output_document(doc, fmt, output, table=table)


def _show_table(run: CatalogShowRun) -> Table:
    data, k = run.data, run.kind
    t = Table(title=f"{k[:-1]} {run.entry_id}")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("source")
    for f, v in data["entry"].items():
        s = data["sources"].get(f)
        if f == "transfer_curve" and isinstance(v, dict):
            s = _source_row(run, v["source"])
            v = (
                f"t(S) = {v['latency_s'] * 1e6:g} us + S / ({100 * v['peak_frac']:g} % of line rate), "
                f"{len(v['points'])} points within {100 * v['max_rel_error_frac']:g} %"
            )
        elif isinstance(v, dict):  # a link's port: the component ids it is priced from
            v = ", ".join(f"{part} {ref}" for part, ref in v.items() if ref)
        shown = ", ".join(v) if isinstance(v, tuple) else str(v)  # a model's hf_aliases
        t.add_row(f, shown, "" if s is None else f"{s['title']} ({s['as_of']})")
    port = data.get("port")
    if port is not None:
        for part in port["parts"]:
            usd = "no public price" if part["usd_per_port"] is None else f"{part['usd_per_port']:,.2f}"
            t.add_row(f"port.{part['part']} (x{part['quantity_per_port']}) USD", usd, _source_text(run, part["source"]))
        t.add_row(
            "port USD (capital, per GPU port)", f"{port['usd']:,.2f}", f"amortized over {port['amortization_years']:g} years"
        )
        t.add_row("port USD per hour", f"{port['usd_per_hour']:.5f}", _source_text(run, port["amortization_source"]))
    for f, v in _flat(data.get("efficiency", {}), "efficiency."):
        t.add_row(f, str(v), "fitted (efficiency.yaml)")
    for p in data.get("prices", []):
        t.add_row(
            "usd_per_gpu_hour",
            str(p["usd_per_gpu_hour"]),
            f"{p['provider']} {p['region']} {p['as_of']}{' (default)' if p['default'] else ''}",
        )
    return t


def _source_row(run: CatalogShowRun, source_id: str | None) -> dict[str, Any] | None:
    src = run.catalog.sources.get(source_id) if source_id else None
    return None if src is None else {"title": src.title, "as_of": src.as_of}


def _source_text(run: CatalogShowRun, source_id: str | None) -> str:
    s = _source_row(run, source_id)
    return "" if s is None else f"{s['title']} ({s['as_of']})"


def _flat(d: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """Efficiency fields as table rows; the fp8 set (when fitted) as ``efficiency.fp8.*``."""
    rows: list[tuple[str, Any]] = []
    for f, v in d.items():
        if isinstance(v, dict):
            rows += _flat(v, f"{prefix}{f}.")
        elif f != "gpu" and not (f == "fp8" and v is None):
            rows.append((f"{prefix}{f}", v))
    return rows


@app.command()
def validate(catalog_dir: CatalogDirOpt = None, fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """Load and check every catalog file; exit 2 with the first problem."""
    from planner.api.catalog import CatalogValidateOptions, run_catalog_validate
    from planner.report.envelope import envelope

    run = run_catalog_validate(CatalogValidateOptions(catalog_dirs=tuple(catalog_dir or ())))
    doc = envelope("catalog validate", "ok", run.inputs, run.data)
    output_document(doc, fmt, output, table=_validate_table(run))


def _validate_table(run: CatalogValidateRun) -> Table:
    t = Table(title="catalog valid")
    t.add_column("kind")
    t.add_column("entries", justify="right")
    for k, n in run.counts.items():
        t.add_row(k, str(n))
    return t


@app.command("import-model")
def import_model(
    config: Annotated[Path, typer.Argument(metavar="CONFIG.json", help="A Hugging Face config.json.", dir_okay=False)],
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Catalog overlay directory: models.yaml and sources.yaml are written or merged.",
            file_okay=False,
        ),
    ],
    model_id: Annotated[str | None, typer.Option("--id", help="Catalog id of the model (default: from the config).")] = None,
    hf_id: Annotated[str | None, typer.Option("--hf-id", help="The Hugging Face repository the config is from.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the config was read, YYYY-MM-DD (default: today).")] = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Write a model entry for a dense, MoE or MLA decoder from its config.json (use it with --catalog-dir DIR)."""
    from planner.api.catalog import ImportModelOptions, run_import_model
    from planner.io.output import write_text_atomic
    from planner.report.envelope import envelope

    run = run_import_model(
        ImportModelOptions(
            config=config,
            output_dir=output_dir,
            model_id=model_id,
            hf_id=hf_id,
            as_of=as_of,
            catalog_dirs=tuple(catalog_dir or ()),
        )
    )
    for name, text in (("sources.yaml", run.sources_text), ("models.yaml", run.models_text)):  # merged: they may be inputs
        write_text_atomic(output_dir / name, text, inputs=(config,), replaces=output_dir / name)
    doc = envelope("catalog import-model", "ok", run.inputs, run.data)
    t = Table(title=f"{run.model_id} -> {output_dir}/models.yaml")
    t.add_column("field")
    t.add_column("value", justify="right")
    for k, v in run.entry.items():
        if k not in ("note", "source"):
            t.add_row(k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
    output_document(doc, fmt, None, table=t)
