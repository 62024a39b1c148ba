"""``planner catalog list|show|validate``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from planner.cli._common import CatalogDirOpt, Format, FormatOpt, OutputOpt, output_document

app = typer.Typer(help="Browse and validate the GPU, model, link and price catalogs.", no_args_is_help=True)

KINDS = ("gpus", "models", "links")
LIST_KINDS = (*KINDS, "engines")  # engines: planner.report.engine lays them out


def _load(catalog_dir: list[Path] | None) -> Any:
    from planner.io.catalog import load_catalog

    return load_catalog(catalog_dir or ())


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Argument(help="gpus, models, links or engines (default: all).")] = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """List catalog entries."""
    from planner.errors import InputError
    from planner.report.engine import engine_list_rows, engine_list_table
    from planner.report.envelope import envelope

    cat = _load(catalog_dir)
    kinds = LIST_KINDS if kind is None else (kind,)
    if kind is not None and kind not in LIST_KINDS:
        raise InputError(f"catalog list {kind}: unknown kind; use one of {', '.join(LIST_KINDS)}")
    data: dict[str, Any] = {}
    tables: list[Any] = []
    for k in kinds:
        if k == "engines":
            data[k] = engine_list_rows(cat)
            tables.append(engine_list_table(data[k]))
            continue
        entries = getattr(cat, k)
        data[k] = [{"id": e.id, "name": e.name, **({"hf_id": e.hf_id} if k == "models" else {})} for e in entries.values()]
        t = Table(title=k)
        t.add_column("id")
        t.add_column("name")
        t.add_column("summary")
        for e in entries.values():
            t.add_row(e.id, e.name, _summary(k, e, cat))
        tables.append(t)
    from rich.console import Group

    doc = envelope("catalog list", "ok", {"kind": kind}, data)
    rows = [{"kind": k, **row} for k in kinds for row in data[k]]
    output_document(doc, fmt, output, table=Group(*tables), csv_rows=rows)


def _summary(kind: str, e: Any, cat: Any) -> str:
    if kind == "gpus":
        price = cat.default_price(e.id)
        p = f"${price.usd_per_gpu_hour:.2f}/GPU-h ({price.provider})" if price else "no price"
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
    from planner.domain import canonical_id
    from planner.io.catalog import IdIndex
    from planner.report.envelope import envelope

    cat = _load(catalog_dir)
    engines = {canonical_id(i): i for i in cat.engines}
    if canonical_id(entry_id) in engines and not any(canonical_id(entry_id) in map(canonical_id, getattr(cat, k)) for k in KINDS):
        _show_engine(cat, engines[canonical_id(entry_id)], entry_id, fmt, output)
        return
    for k in KINDS:
        entries = getattr(cat, k)
        canon = {canonical_id(i): i for i in entries}
        if canonical_id(entry_id) in canon:
            e = entries[canon[canonical_id(entry_id)]]
            break
    else:
        # not an id: a model's Hugging Face id or alias, or an unknown id (close matches in the error)
        hf_ids = dict(IdIndex.models(cat.models).alias_canon.values())
        all_ids = [i for k in KINDS for i in getattr(cat, k)] + list(cat.engines)
        k, e = "models", cat.models[IdIndex("catalog", all_ids, hf_ids).resolve(entry_id, "catalog show")]
    fields = {k: v for k, v in asdict(e).items() if k != "sources"}
    srcs = dict(e.sources)
    data: dict[str, Any] = {
        "kind": k,
        "entry": fields,
        "sources": {f: _src(cat, s) for f, s in sorted(srcs.items()) if f in fields},
    }
    if k == "gpus":
        eff = cat.efficiency[e.id]
        data["efficiency"] = asdict(eff)
        data["prices"] = [asdict(p) for p in cat.prices if p.gpu == e.id]
    t = Table(title=f"{k[:-1]} {e.id}")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("source")
    for f, v in fields.items():
        s = data["sources"].get(f)
        shown = ", ".join(v) if isinstance(v, tuple) else str(v)  # a model's hf_aliases
        t.add_row(f, shown, "" if s is None else f"{s['title']} ({s['as_of']})")
    for f, v in _flat(data.get("efficiency", {}), "efficiency."):
        t.add_row(f, str(v), "fitted (efficiency.yaml)")
    for p in data.get("prices", []):
        t.add_row(
            "usd_per_gpu_hour",
            str(p["usd_per_gpu_hour"]),
            f"{p['provider']} {p['region']} {p['as_of']}{' (default)' if p['default'] else ''}",
        )
    doc = envelope("catalog show", "ok", {"id": entry_id}, data)
    output_document(doc, fmt, output, table=t)


def _show_engine(cat: Any, engine_id: str, raw: str, fmt: Format, output: Path | None) -> None:
    """``catalog show ENGINE``: its fields with their sources, the note, and each GPU's factor sets."""
    from planner.report.engine import engine_show_data, engine_show_table
    from planner.report.envelope import envelope

    data = engine_show_data(cat, engine_id)
    output_document(envelope("catalog show", "ok", {"id": raw}, data), fmt, output, table=engine_show_table(data))


def _flat(d: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """Efficiency fields as table rows; the fp8 set (when fitted) as ``efficiency.fp8.*``."""
    rows: list[tuple[str, Any]] = []
    for f, v in d.items():
        if isinstance(v, dict):
            rows += _flat(v, f"{prefix}{f}.")
        elif f != "gpu" and not (f == "fp8" and v is None):
            rows.append((f"{prefix}{f}", v))
    return rows


def _src(cat: Any, source_id: str) -> dict[str, Any]:
    s = cat.sources[source_id]
    return {"id": s.id, "title": s.title, "url": s.url, "as_of": s.as_of}


@app.command()
def validate(catalog_dir: CatalogDirOpt = None, fmt: FormatOpt = Format.table, output: OutputOpt = None) -> None:
    """Load and check every catalog file; exit 2 with the first problem."""
    from planner.report.envelope import envelope

    cat = _load(catalog_dir)
    counts = {k: len(getattr(cat, k)) for k in (*KINDS, "engines", "efficiency", "sources")}
    counts["prices"] = len(cat.prices)
    files = sorted(set(cat.origin.values()))
    doc = envelope(
        "catalog validate",
        "ok",
        {"catalog_dirs": [str(p) for p in (catalog_dir or [])]},
        {"valid": True, "counts": counts, "files": files},
    )
    t = Table(title="catalog valid")
    t.add_column("kind")
    t.add_column("entries", justify="right")
    for k, n in counts.items():
        t.add_row(k, str(n))
    output_document(doc, fmt, output, table=t)
