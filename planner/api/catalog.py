"""``planner catalog list|show|validate``: browse and check the GPU, model, link, engine and price catalogs.

Each function loads the built-in catalog and the options' ``catalog_dirs`` (and ``PLANNER_CATALOG_DIR``) and returns
the catalog with what the command reports: ``inputs`` and ``data`` are the JSON envelope's objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from planner.domain import Catalog, canonical_id
from planner.errors import InputError

__all__ = [
    "CATALOG_KINDS",
    "CATALOG_LIST_KINDS",
    "CatalogListOptions",
    "CatalogListRun",
    "CatalogShowOptions",
    "CatalogShowRun",
    "CatalogValidateOptions",
    "CatalogValidateRun",
    "ImportModelOptions",
    "ImportModelRun",
    "run_catalog_list",
    "run_catalog_show",
    "run_catalog_validate",
    "run_import_model",
]

CATALOG_KINDS = ("gpus", "models", "links")  # the kinds of entries with figures and sources
CATALOG_LIST_KINDS = (*CATALOG_KINDS, "engines")


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogListOptions:
    """``planner catalog list [KIND]``."""

    kind: str | None = None  # gpus, models, links or engines (None: all)
    catalog_dirs: Sequence[Path] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogShowOptions:
    """``planner catalog show ID``."""

    entry_id: str  # a GPU, model, link or engine id, or a model's Hugging Face id or alias
    catalog_dirs: Sequence[Path] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogValidateOptions:
    """``planner catalog validate``."""

    catalog_dirs: Sequence[Path] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogListRun:
    options: CatalogListOptions
    catalog: Catalog
    kinds: tuple[str, ...]  # the kinds listed, in order
    inputs: dict[str, Any]
    data: dict[str, Any]  # kind -> rows


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogShowRun:
    options: CatalogShowOptions
    catalog: Catalog
    kind: str  # gpus, models, links or engines
    entry_id: str  # the catalog id the options' id resolved to
    inputs: dict[str, Any]
    data: dict[str, Any]  # every figure with its source (an engine: planner.report.engine.engine_show_data)


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogValidateRun:
    options: CatalogValidateOptions
    catalog: Catalog
    counts: dict[str, int]  # entries per kind
    files: tuple[str, ...]  # the catalog files the entries come from
    inputs: dict[str, Any]
    data: dict[str, Any]


def _load(catalog_dirs: Sequence[Path]) -> Catalog:
    from planner.io.catalog import load_catalog

    return load_catalog(catalog_dirs)


def run_catalog_list(options: CatalogListOptions) -> CatalogListRun:
    """Every entry of one kind (or of all): id and name (a model's Hugging Face id too); engines with their
    scheduler defaults and which is the default."""
    from planner.io.sources import reading_once
    from planner.report.engine import engine_list_rows

    with reading_once():
        cat = _load(options.catalog_dirs)
    kind = options.kind
    if kind is not None and kind not in CATALOG_LIST_KINDS:
        raise InputError(f"catalog list {kind}: unknown kind; use one of {', '.join(CATALOG_LIST_KINDS)}")
    kinds = CATALOG_LIST_KINDS if kind is None else (kind,)
    data: dict[str, Any] = {}
    for k in kinds:
        if k == "engines":
            data[k] = engine_list_rows(cat)
            continue
        entries = getattr(cat, k)
        data[k] = [{"id": e.id, "name": e.name, **({"hf_id": e.hf_id} if k == "models" else {})} for e in entries.values()]
    return CatalogListRun(options=options, catalog=cat, kinds=kinds, inputs={"kind": kind}, data=data)


def run_catalog_show(options: CatalogShowOptions) -> CatalogShowRun:
    """Every figure of one entry with its source; a GPU's efficiency factors and prices too."""
    from planner.io.catalog import IdIndex
    from planner.io.sources import reading_once
    from planner.report.engine import engine_show_data

    with reading_once():
        cat = _load(options.catalog_dirs)
    raw = options.entry_id
    inputs: dict[str, Any] = {"id": raw}
    engines = {canonical_id(i): i for i in cat.engines}
    if canonical_id(raw) in engines and not any(canonical_id(raw) in map(canonical_id, getattr(cat, k)) for k in CATALOG_KINDS):
        engine_id = engines[canonical_id(raw)]
        data = engine_show_data(cat, engine_id)
        return CatalogShowRun(options=options, catalog=cat, kind="engines", entry_id=engine_id, inputs=inputs, data=data)
    for k in CATALOG_KINDS:
        entries = getattr(cat, k)
        canon = {canonical_id(i): i for i in entries}
        if canonical_id(raw) in canon:
            e = entries[canon[canonical_id(raw)]]
            break
    else:
        # not an id: a model's Hugging Face id or alias, or an unknown id (close matches in the error)
        hf_ids = dict(IdIndex.models(cat.models).alias_canon.values())
        all_ids = [i for k in CATALOG_KINDS for i in getattr(cat, k)] + list(cat.engines)
        k, e = "models", cat.models[IdIndex("catalog", all_ids, hf_ids).resolve(raw, "catalog show")]
    fields = {f: v for f, v in asdict(e).items() if f != "sources"}
    srcs = dict(e.sources)
    data = {
        "kind": k,
        "entry": fields,
        "sources": {f: _source(cat, s) for f, s in sorted(srcs.items()) if f in fields},
    }
    if k == "gpus":
        data["efficiency"] = _efficiency_doc(asdict(cat.efficiency[e.id]))
        data["prices"] = [asdict(p) for p in cat.prices if p.gpu == e.id]
    if k == "links" and e.scope == "inter_node":
        from planner.domain import Pricing
        from planner.report.size import port_data

        # One GPU's port: its parts, prices and sources, amortized as an on-demand plan prices it.
        data["port"] = port_data(e, cat, Pricing())
    return CatalogShowRun(options=options, catalog=cat, kind=k, entry_id=e.id, inputs=inputs, data=data)


def _source(cat: Catalog, source_id: str) -> dict[str, Any]:
    s = cat.sources[source_id]
    return {"id": s.id, "title": s.title, "url": s.url, "as_of": s.as_of}


def run_catalog_validate(options: CatalogValidateOptions) -> CatalogValidateRun:
    """Load and check every catalog file (the first problem raises :class:`~planner.errors.InputError`); the
    number of entries of each kind and the files they come from."""
    from planner.io.sources import reading_once

    with reading_once():
        cat = _load(options.catalog_dirs)
    counts = {k: len(getattr(cat, k)) for k in (*CATALOG_KINDS, "engines", "efficiency", "sources")}
    counts["prices"] = len(cat.prices)
    files = tuple(sorted(set(cat.origin.values())))
    inputs: dict[str, Any] = {"catalog_dirs": [str(p) for p in options.catalog_dirs]}
    data: dict[str, Any] = {"valid": True, "counts": counts, "files": list(files)}
    return CatalogValidateRun(options=options, catalog=cat, counts=counts, files=files, inputs=inputs, data=data)


# --------------------------------------------------------------------------- catalog import-model


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportModelOptions:
    """``planner catalog import-model CONFIG -o DIR``: a Hugging Face config.json into a catalog overlay."""

    config: Path  # the model's config.json
    output_dir: Path  # the overlay directory: models.yaml and sources.yaml are written (or merged) there
    model_id: str | None = None  # default: the Hugging Face name, lower case
    hf_id: str | None = None  # the repository the config is from (recorded as hf_id and in the source)
    as_of: str | None = None  # the date the config was read (default: today, UTC)
    catalog_dirs: Sequence[Path] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportModelRun:
    options: ImportModelOptions
    model_id: str
    entry: dict[str, Any]
    notes: list[str]
    models_text: str  # what DIR/models.yaml becomes
    sources_text: str  # what DIR/sources.yaml becomes
    inputs: dict[str, Any]
    data: dict[str, Any]


def _overlay(path: Path, key: str) -> dict[str, Any]:
    """An existing overlay file's entries under ``key`` (empty when the file does not exist)."""
    from planner.io.yamlio import load_file

    if not path.exists():
        return {}
    doc = load_file(path)
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or not isinstance(doc.get(key, {}), dict):
        raise InputError(f"{path}: not a catalog {key} file (schema_version: 1 and a {key}: mapping)")
    return dict(doc.get(key) or {})


def run_import_model(options: ImportModelOptions) -> ImportModelRun:
    """Read the config, build the entry (:mod:`planner.io.hf_config`), merge it into the overlay's files and check
    that the catalog with the overlay loads (``catalog validate``). Nothing is written here: the caller writes
    ``models_text`` and ``sources_text``."""
    import datetime as dt
    import tempfile

    from planner.io.catalog import load_catalog
    from planner.io.hf_config import import_model, parse_config
    from planner.io.sources import read_source, reading_once
    from planner.io.yamlio import dumps

    with reading_once():
        src = read_source(options.config, "JSON")
        imported = import_model(parse_config(src.text, str(options.config)), str(options.config), options.model_id, options.hf_id)
        model_id = canonical_id(imported.id) if options.model_id is None else options.model_id
        as_of = options.as_of or dt.datetime.now(dt.UTC).date().isoformat()
        try:
            dt.date.fromisoformat(as_of)
        except ValueError:
            raise InputError(f"--as-of {as_of}: give a date as YYYY-MM-DD") from None
        source_id = f"hf-{canonical_id(model_id)}-config"
        url = f"https://huggingface.co/{options.hf_id}/blob/main/config.json" if options.hf_id else None
        source: dict[str, Any] = {
            "title": f"{options.hf_id or options.config.name} config.json" + (" (Hugging Face)" if options.hf_id else ""),
            **({"url": url} if url else {}),
            "as_of": as_of,
            "note": f"Imported by planner catalog import-model from {options.config.name} (sha256 {src.sha256[:16]}).",
        }
        entry = {"source": source_id, **imported.entry, "note": "; ".join(imported.notes)}
        models = _overlay(options.output_dir / "models.yaml", "models")
        sources = _overlay(options.output_dir / "sources.yaml", "sources")
        models[model_id] = entry
        sources[source_id] = source
        models_text = "# written by planner catalog import-model\n" + dumps({"schema_version": 1, "models": models})
        sources_text = "# written by planner catalog import-model\n" + dumps({"schema_version": 1, "sources": sources})
        with tempfile.TemporaryDirectory(prefix="planner-import-") as tmp:
            (Path(tmp) / "models.yaml").write_text(models_text, encoding="utf-8")
            (Path(tmp) / "sources.yaml").write_text(sources_text, encoding="utf-8")
            try:  # the overlay must validate; errors name the files it becomes
                load_catalog([*options.catalog_dirs, Path(tmp)], require_efficiency=False)
            except InputError as exc:
                raise InputError(exc.message.replace(tmp, str(options.output_dir)), hint=exc.hint) from None
    inputs = {
        "config": str(options.config),
        "config_sha256": src.sha256,
        "model_id": model_id,
        "hf_id": options.hf_id,
        "output_dir": str(options.output_dir),
    }
    data = {"model": {"id": model_id, **entry}, "source": {"id": source_id, **source}}
    return ImportModelRun(
        options=options,
        model_id=model_id,
        entry=entry,
        notes=imported.notes,
        models_text=models_text,
        sources_text=sources_text,
        inputs=inputs,
        data=data,
    )


def _efficiency_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """An efficiency set as ``catalog show`` prints it: ``allreduce_curve_withheld`` only where true (the H800's)."""
    out = {k: v for k, v in doc.items() if k != "allreduce_curve_withheld" or v}
    for name in ("fp8", "fp4"):
        if isinstance(out.get(name), dict):
            out[name] = _efficiency_doc(out[name])
    return out
