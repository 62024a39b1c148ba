"""Locate, load, merge and validate the catalogs, and turn them into a :class:`domain.Catalog`.

Search order: the built-in catalogs (shipped in the wheel as ``planner/_catalogs``, or the repo's
``catalogs/`` in a source checkout), then each directory of ``PLANNER_CATALOG_DIR`` (``:``-separated),
then ``--catalog-dir``. A later directory extends the earlier ones and overrides entries with the
same id.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from planner import domain
from planner.errors import CatalogError, InputError, UnknownIdError
from planner.io import schemas
from planner.io.yamlio import find_line, load_file, read_text
from planner.units import gbit_per_s_to_bytes_per_s, gbyte_per_s_to_bytes_per_s, gib_to_bytes, tflop_per_s_to_flop_per_s, us_to_s

FILES: dict[str, type[BaseModel]] = {
    "sources": schemas.SourcesFile,
    "gpus": schemas.GpusFile,
    "models": schemas.ModelsFile,
    "links": schemas.LinksFile,
    "prices": schemas.PricesFile,
    "efficiency": schemas.EfficiencyFile,
    "engine": schemas.EngineFile,
}
ENV_VAR = "PLANNER_CATALOG_DIR"

M = TypeVar("M", bound=BaseModel)


def builtin_catalog_dir() -> Path:
    """The packaged catalogs (wheel) or the repository's ``catalogs/`` (source checkout)."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_catalogs"
    if packaged.is_dir():
        return packaged
    return here.parent / "catalogs"


def catalog_dirs(extra: Sequence[Path] = ()) -> list[Path]:
    dirs = [builtin_catalog_dir()]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += list(extra)
    for d in dirs[1:]:
        if not d.is_dir():
            raise CatalogError(f"{d}: catalog directory does not exist")
    return dirs


def format_validation_error(origin: Path, text: str, exc: ValidationError) -> str:
    """First pydantic error as ``file:line: dotted.path: message``."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    line = find_line(text, loc)
    where = f"{origin}:{line}" if line else str(origin)
    path = ".".join(str(p) if str(p).isprintable() and " " not in str(p) else repr(p) for p in loc)
    message = " ".join(str(err["msg"]).split())  # one line, whatever the input held
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {path}: {message}{more}" if path else f"{where}: {message}{more}"


def parse_file(path: Path, model: type[M]) -> M:
    try:
        text = read_text(path)
        data = load_file(path)
    except CatalogError:
        raise
    except InputError as exc:
        raise CatalogError(exc.message, hint=exc.hint) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(format_validation_error(path, text, exc)) from None


@dataclass
class _Raw:
    sources: dict[str, schemas.SourceEntry] = field(default_factory=dict)
    gpus: dict[str, schemas.GpuEntry] = field(default_factory=dict)
    models: dict[str, schemas.ModelEntry] = field(default_factory=dict)
    links: dict[str, schemas.LinkEntry] = field(default_factory=dict)
    prices: list[tuple[Path, int, schemas.GpuPriceEntry]] = field(default_factory=list)
    servers: list[tuple[Path, int, schemas.ServerEntry]] = field(default_factory=list)
    electricity: schemas.ElectricityEntry | None = None
    pue: schemas.PueEntry | None = None
    efficiency: dict[str, schemas.EfficiencyEntry] = field(default_factory=dict)
    engine: schemas.EngineEntry | None = None
    origin: dict[str, Path] = field(default_factory=dict)  # "kind:id" -> file


def _merge_ids(target: dict[str, Any], entries: Mapping[str, Any], kind: str, path: Path, raw: _Raw) -> None:
    by_canon = {domain.canonical_id(k): k for k in target}
    seen: dict[str, str] = {}
    for key, entry in entries.items():
        canon = domain.canonical_id(key)
        if canon in seen:
            raise CatalogError(f"{path}: {kind} ids {seen[canon]!r} and {key!r} are the same id")
        seen[canon] = key
        if canon in by_canon:
            del target[by_canon[canon]]
        target[key] = entry
        raw.origin[f"{kind}:{canon}"] = path


def _load_raw(dirs: Sequence[Path]) -> _Raw:
    raw = _Raw()
    for directory in dirs:
        for kind, model in FILES.items():
            path = directory / f"{kind}.yaml"
            if not path.exists():
                continue
            doc: Any = parse_file(path, model)
            if kind in ("sources", "gpus", "models", "links", "efficiency"):
                _merge_ids(getattr(raw, kind), getattr(doc, kind), kind, path, raw)
            elif kind == "engine":
                raw.engine = doc.engine
                raw.origin["engine:"] = path
            elif kind == "prices":
                _merge_prices(raw, doc, path)
    return raw


def _merge_prices(raw: _Raw, doc: schemas.PricesFile, path: Path) -> None:
    new_defaults = {domain.canonical_id(p.gpu) for p in doc.gpu_prices if p.default}
    keys = {(domain.canonical_id(p.gpu), p.provider) for p in doc.gpu_prices}
    kept = []
    for origin, index, p in raw.prices:
        if (domain.canonical_id(p.gpu), p.provider) in keys:
            continue
        if p.default and domain.canonical_id(p.gpu) in new_defaults:
            p = p.model_copy(update={"default": False})
        kept.append((origin, index, p))
    raw.prices = kept + [(path, i, p) for i, p in enumerate(doc.gpu_prices)]
    gpus = {domain.canonical_id(s.gpu) for s in doc.servers}
    raw.servers = [s for s in raw.servers if domain.canonical_id(s[2].gpu) not in gpus]
    raw.servers += [(path, i, s) for i, s in enumerate(doc.servers)]
    if doc.electricity is not None:
        raw.electricity = doc.electricity
    if doc.pue is not None:
        raw.pue = doc.pue


class IdIndex:
    """Case-insensitive, separator-insensitive lookup of catalog ids with close-match hints."""

    def __init__(self, kind: str, ids: Iterable[str]) -> None:
        self.kind = kind
        self.by_canon = {domain.canonical_id(i): i for i in ids}

    def resolve(self, raw_id: str, where: str = "") -> str:
        found = self.by_canon.get(domain.canonical_id(raw_id))
        if found is not None:
            return found
        close = difflib.get_close_matches(domain.canonical_id(raw_id), list(self.by_canon), n=3, cutoff=0.5)
        names = [self.by_canon[c] for c in close]
        hint = (
            f"did you mean {', '.join(names)}?"
            if names
            else f"known {self.kind} ids: {', '.join(sorted(self.by_canon.values()))}"
        )
        prefix = f"{where}: " if where else ""
        raise UnknownIdError(f"{prefix}unknown {self.kind} id {raw_id!r}", hint=hint)


# Catalog (YAML) figure names → domain field names, so sources follow a figure through unit conversion.
_DOMAIN_NAMES = {
    "bf16_dense_tflop_per_s": "bf16_flop_per_s",
    "fp16_dense_tflop_per_s": "fp16_flop_per_s",
    "fp8_dense_tflop_per_s": "fp8_flop_per_s",
    "hbm_capacity_gib": "hbm_capacity_bytes",
    "hbm_bandwidth_gbyte_per_s": "hbm_bandwidth_bytes_per_s",
    "nvlink_gbyte_per_s": "nvlink_bytes_per_s",
    "bandwidth_gbit_per_s": "bandwidth_bytes_per_s",
    "bandwidth_gbyte_per_s": "bandwidth_bytes_per_s",
    "latency_us": "latency_s",
}
_NOT_FIGURES = {"source", "field_sources", "note", "name"}


def _sources_of(entry: schemas.Sourced, figures: Iterable[str]) -> dict[str, str]:
    """Source id of every figure, keyed by the domain field name."""
    out: dict[str, str] = {}
    for name in figures:
        if name in _NOT_FIGURES or (name.startswith("bandwidth_") and getattr(entry, name, None) is None):
            continue
        out[_DOMAIN_NAMES.get(name, name)] = entry.source_of(name)
    return out


def _check_source(raw: _Raw, source_id: str | None, where: str) -> None:
    if source_id is not None and source_id not in raw.sources:
        raise CatalogError(f"{where}: source {source_id!r} is not in sources.yaml")


def _to_domain(raw: _Raw, require_efficiency: bool = True) -> domain.Catalog:
    if raw.engine is None:
        raise CatalogError("engine.yaml: no engine assumptions found in any catalog directory")
    for kind in ("gpus", "models", "links"):
        for key, entry in getattr(raw, kind).items():
            where = f"{raw.origin[f'{kind}:{domain.canonical_id(key)}']}: {key}"
            for src in {entry.source, *entry.field_sources.values()}:
                _check_source(raw, src, where)
    _check_source(raw, raw.engine.source, str(raw.origin["engine:"]))
    for src in raw.engine.field_sources.values():
        _check_source(raw, src, str(raw.origin["engine:"]))

    gpus = {
        key: domain.GpuSpec(
            id=key,
            name=g.name,
            bf16_flop_per_s=tflop_per_s_to_flop_per_s(g.bf16_dense_tflop_per_s),
            fp16_flop_per_s=tflop_per_s_to_flop_per_s(g.fp16_dense_tflop_per_s),
            fp8_flop_per_s=None if g.fp8_dense_tflop_per_s is None else tflop_per_s_to_flop_per_s(g.fp8_dense_tflop_per_s),
            hbm_capacity_bytes=gib_to_bytes(g.hbm_capacity_gib),
            hbm_bandwidth_bytes_per_s=gbyte_per_s_to_bytes_per_s(g.hbm_bandwidth_gbyte_per_s),
            tdp_w=g.tdp_w,
            idle_w=g.idle_w,
            decode_busy_w=g.decode_busy_w,
            nvlink_bytes_per_s=gbyte_per_s_to_bytes_per_s(g.nvlink_gbyte_per_s),
            pcie_generation=g.pcie_generation,
            gpus_per_node=g.gpus_per_node,
            nvlink_domain_gpus=g.nvlink_domain_gpus or g.gpus_per_node,
            sources=_sources_of(g, schemas.GpuEntry.model_fields),
        )
        for key, g in sorted(raw.gpus.items())
    }
    models = {
        key: domain.ModelSpec(
            id=key,
            name=m.name,
            num_params=m.num_params,
            num_active_params=m.num_active_params,
            num_layers=m.num_layers,
            hidden_size=m.hidden_size,
            intermediate_size=m.intermediate_size,
            num_attention_heads=m.num_attention_heads,
            num_kv_heads=m.num_kv_heads,
            head_dim=m.head_dim,
            vocab_size=m.vocab_size,
            max_context_tokens=m.max_context_tokens,
            num_experts=m.num_experts,
            experts_per_token=m.experts_per_token,
            sources=_sources_of(m, schemas.ModelEntry.model_fields),
        )
        for key, m in sorted(raw.models.items())
    }
    links = {
        key: domain.LinkSpec(
            id=key,
            name=lk.name,
            kind=lk.kind,
            scope=lk.scope,
            bandwidth_bytes_per_s=(
                gbit_per_s_to_bytes_per_s(lk.bandwidth_gbit_per_s)
                if lk.bandwidth_gbit_per_s is not None
                else gbyte_per_s_to_bytes_per_s(lk.bandwidth_gbyte_per_s or 0.0)
            ),
            latency_s=None if lk.latency_us is None else us_to_s(lk.latency_us),
            port_usd=lk.port_usd,
            sources=_sources_of(lk, schemas.LinkEntry.model_fields),
        )
        for key, lk in sorted(raw.links.items())
    }
    gpu_index = IdIndex("GPU", gpus)

    prices = []
    defaults: dict[str, str] = {}
    for path, i, p in raw.prices:
        where = f"{path}: gpu_prices[{i}]"
        gpu = gpu_index.resolve(p.gpu, where)
        _check_source(raw, p.source, where)
        if p.default:
            if gpu in defaults:
                raise CatalogError(f"{where}: a second default price for {gpu} (first: {defaults[gpu]})")
            defaults[gpu] = p.provider
        prices.append(
            domain.GpuPrice(
                gpu=gpu,
                provider=p.provider,
                region=p.region,
                usd_per_gpu_hour=p.usd_per_gpu_hour,
                as_of=str(p.as_of),
                source=p.source,
                default=p.default,
            )
        )
    servers = []
    for path, i, s in raw.servers:
        where = f"{path}: servers[{i}]"
        _check_source(raw, s.source, where)
        servers.append(
            domain.ServerCapex(
                gpu=gpu_index.resolve(s.gpu, where),
                gpus_per_server=s.gpus_per_server,
                capex_usd=s.capex_usd,
                amortization_years=s.amortization_years,
                as_of=str(s.as_of),
                source=s.source,
            )
        )
    for extra in (raw.electricity, raw.pue):
        if extra is not None:
            _check_source(raw, extra.source, "prices.yaml")

    efficiency = _efficiency(raw, gpu_index)
    missing = sorted(set(gpus) - set(efficiency))
    if missing and require_efficiency:
        raise CatalogError(
            f"efficiency.yaml: no efficiency entry for {', '.join(missing)}",
            hint="fit one with planner calibrate, or add transferred_from with a note",
        )
    e = raw.engine
    engine = domain.EngineSpec(
        gpu_memory_utilization_frac=e.gpu_memory_utilization_frac,
        activation_reserve_bytes=gib_to_bytes(e.activation_reserve_gib),
        net_efficiency_frac=dict(sorted(e.net_efficiency_frac.items())),
        source=e.source,
    )
    sources = {
        key: domain.Source(id=key, title=s.title, url=s.url, as_of=str(s.as_of), note=s.note)
        for key, s in sorted(raw.sources.items())
    }
    return domain.Catalog(
        gpus=gpus,
        models=models,
        links=links,
        efficiency=efficiency,
        prices=tuple(sorted(prices, key=lambda p: (p.gpu, p.provider, p.region))),
        servers=tuple(sorted(servers, key=lambda s: s.gpu)),
        electricity_usd_per_kwh=raw.electricity.usd_per_kwh if raw.electricity else None,
        pue=raw.pue.value if raw.pue else None,
        engine=engine,
        sources=sources,
        origin={k: str(v) for k, v in sorted(raw.origin.items())},
    )


def _efficiency(raw: _Raw, gpu_index: IdIndex) -> dict[str, domain.Efficiency]:
    fitted: dict[str, domain.Efficiency] = {}
    transferred: dict[str, tuple[str, str]] = {}
    for key, e in raw.efficiency.items():
        where = f"{raw.origin[f'efficiency:{domain.canonical_id(key)}']}: {key}"
        gpu = gpu_index.resolve(key, where)
        _check_source(raw, e.source, where)
        if e.transferred_from is not None:
            transferred[gpu] = (gpu_index.resolve(e.transferred_from, where), where)
            continue
        if e.fp8 is not None:
            _check_source(raw, e.fp8.source, f"{where}: fp8")
        fitted[gpu] = _factors(gpu, e, fp8=None if e.fp8 is None else _factors(gpu, e.fp8, fp8=None))
    out = dict(fitted)
    for gpu, (donor, where) in sorted(transferred.items()):
        if donor not in fitted:
            raise CatalogError(f"{where}: transferred_from {donor!r}, which has no fitted entry")
        lent = fitted[donor]
        fp8 = None if lent.fp8 is None else replace(lent.fp8, gpu=gpu, transferred_from=donor)
        out[gpu] = replace(lent, gpu=gpu, transferred_from=donor, fp8=fp8)
    return dict(sorted(out.items()))


def _factors(gpu: str, e: schemas.EfficiencyEntry, fp8: domain.Efficiency | None) -> domain.Efficiency:
    return domain.Efficiency(
        gpu=gpu,
        compute_frac=e.compute_frac or 0.0,
        attention_compute_frac=e.attention_compute_frac or 0.0,
        memory_frac=e.memory_frac or 0.0,
        prefill_fixed_s=e.prefill_fixed_s or 0.0,
        decode_fixed_s=e.decode_fixed_s or 0.0,
        decode_per_seq_s=e.decode_per_seq_s or 0.0,
        allreduce_latency_s=e.allreduce_latency_s or 0.0,
        allreduce_bandwidth_frac=e.allreduce_bandwidth_frac or 0.0,
        fitted_on=e.fitted_on or "",
        fp8=fp8,
    )


def load_catalog(extra_dirs: Sequence[Path] = (), *, require_efficiency: bool = True) -> domain.Catalog:
    """Load, merge and validate every catalog directory; raises :class:`CatalogError`.

    ``require_efficiency=False`` is for calibration, which fits the factors the catalog lacks.
    """
    return _to_domain(_load_raw(catalog_dirs(extra_dirs)), require_efficiency)
