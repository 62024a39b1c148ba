"""Locate, load, merge and validate the catalogs, and turn them into a :class:`domain.Catalog`.

Search order: the built-in catalogs (shipped in the wheel as ``planner/_catalogs``, or the repo's
``catalogs/`` in a source checkout), then each directory of ``PLANNER_CATALOG_DIR`` (``:``-separated),
then ``--catalog-dir``. A later directory extends the earlier ones and overrides entries with the
same id.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from planner import domain
from planner.errors import CatalogError, InputError, UnknownIdError
from planner.io import schemas
from planner.io.yamlio import find_line, loads, loads_shipped, read_text
from planner.units import gbit_per_s_to_bytes_per_s, gbyte_per_s_to_bytes_per_s, gib_to_bytes, tflop_per_s_to_flop_per_s, us_to_s

FILES: dict[str, type[BaseModel]] = {
    "sources": schemas.SourcesFile,
    "gpus": schemas.GpusFile,
    "models": schemas.ModelsFile,
    "links": schemas.LinksFile,
    "prices": schemas.PricesFile,
    "efficiency": schemas.EfficiencyFile,
    "engines": schemas.EnginesFile,
    "power": schemas.PowerFile,  # optional: measured step-power factors per GPU
    "speculative": schemas.SpeculativeFile,  # speculative-decoding defaults per method, each with its source
}
EFFICIENCY_DIR = "efficiency"  # efficiency/<engine>.yaml: one engine's factors per file
ENV_VAR = "PLANNER_CATALOG_DIR"
ENGINE_ENV_VAR = "PLANNER_ENGINE"  # the engine used where none is named (default: engines.yaml's default)

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
        shipped = path.resolve().is_relative_to(builtin_catalog_dir().resolve())
        data = loads_shipped(text, str(path)) if shipped else loads(text, str(path))
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
    efficiency: list[tuple[Path, schemas.EfficiencyFile]] = field(default_factory=list)  # in load order
    engines: dict[str, schemas.EngineEntry] = field(default_factory=dict)
    engines_file: schemas.EnginesFile | None = None
    power: dict[str, schemas.PowerEntry] = field(default_factory=dict)
    speculative: dict[str, schemas.SpeculativeEntry] = field(default_factory=dict)
    components: dict[str, schemas.ComponentEntry] = field(default_factory=dict)  # network parts (links.yaml)
    transfer_curves: dict[str, schemas.TransferCurveEntry] = field(default_factory=dict)  # link kind -> curve
    network: schemas.NetworkEntry | None = None
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


def _present(path: Path) -> bool:
    """Whether a catalog directory holds ``path``: False when there is nothing by that name, a CatalogError
    for a broken symbolic link (or a loop) or for something other than a regular file (a FIFO would hang)."""
    if not os.path.lexists(path):
        return False
    try:
        st = path.stat()
    except OSError:
        raise CatalogError(f"{path}: broken symbolic link (its target does not exist, or a loop)") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise CatalogError(f"{path}: {kind}, expected a catalog file")
    return True


def _load_raw(dirs: Sequence[Path]) -> _Raw:
    raw = _Raw()
    for directory in dirs:
        for kind, model in FILES.items():
            path = directory / f"{kind}.yaml"
            if kind == "efficiency":
                per_engine = sorted((directory / EFFICIENCY_DIR).glob("*.yaml")) if (directory / EFFICIENCY_DIR).is_dir() else []
                for eff_path in [*per_engine, path]:
                    if _present(eff_path):
                        raw.efficiency.append((eff_path, parse_file(eff_path, schemas.EfficiencyFile)))
                continue
            if not _present(path):
                continue
            doc: Any = parse_file(path, model)
            if kind in ("sources", "gpus", "models", "links"):
                _merge_ids(getattr(raw, kind), getattr(doc, kind), kind, path, raw)
            if kind == "links":
                _merge_ids(raw.components, doc.components, "components", path, raw)
                for link_kind, curve in doc.transfer_curves.items():
                    raw.transfer_curves[link_kind] = curve
                    raw.origin[f"transfer_curves:{link_kind}"] = path
                if doc.network is not None:
                    raw.network = doc.network
                    raw.origin["network:"] = path
            elif kind == "engines":
                _merge_ids(raw.engines, doc.engines, "engines", path, raw)
                raw.engines_file = (
                    doc
                    if raw.engines_file is None
                    else raw.engines_file.model_copy(
                        update={
                            "default": doc.default,
                            "net_efficiency_frac": doc.net_efficiency_frac,
                            "net_efficiency_source": doc.net_efficiency_source,
                        }
                    )
                )
                raw.origin["engines:"] = path
            elif kind == "prices":
                _merge_prices(raw, doc, path)
            elif kind == "power":
                _merge_ids(raw.power, doc.gpus, "power", path, raw)
            elif kind == "speculative":
                _merge_ids(raw.speculative, doc.methods, "speculative", path, raw)
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
    """Case-insensitive, separator-insensitive lookup of catalog ids with close-match hints.

    ``aliases`` (alias → id) are other names of an id, such as a model's Hugging Face ids
    (:meth:`models`): they resolve like the id and are offered as close matches; the "known ids"
    hint lists only ids.
    """

    def __init__(self, kind: str, ids: Iterable[str], aliases: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.by_canon = {domain.canonical_id(i): i for i in ids}
        self.alias_canon: dict[str, tuple[str, str]] = {}  # canonical alias -> (alias as spelled, id)
        for alias, target in (aliases or {}).items():
            canon = domain.canonical_id(alias)
            if self.by_canon.get(canon, target) != target:
                raise CatalogError(f"{kind} {target}: alias {alias!r} is the id of {kind} {self.by_canon[canon]}")
            if canon not in self.by_canon:
                self.alias_canon[canon] = (alias, target)

    @classmethod
    def models(cls, models: Mapping[str, domain.ModelSpec], origin: Mapping[str, str] | None = None) -> IdIndex:
        """Model ids plus each model's ``hf_id`` and ``hf_aliases``. A Hugging Face id that two
        models claim is a :class:`CatalogError` naming both (``origin``: model id → its file)."""

        def named(model_id: str) -> str:
            where = (origin or {}).get(model_id)
            return f"{model_id} ({where})" if where else model_id

        aliases: dict[str, str] = {}
        claimed: dict[str, tuple[str, str]] = {}  # canonical Hugging Face id -> (as spelled, model id)
        for key, m in models.items():
            for name in ([m.hf_id] if m.hf_id else []) + list(m.hf_aliases):
                canon = domain.canonical_id(name)
                first = claimed.setdefault(canon, (name, key))
                if first[1] != key:
                    raise CatalogError(
                        f"models {named(first[1])} and {named(key)} both claim the Hugging Face id "
                        f"{first[0]!r}{'' if first[0] == name else f' ({name!r})'}",
                        hint="a Hugging Face id or alias names one model; drop it from one of them",
                    )
                aliases[name] = key
        return cls("model", models, aliases)

    def find(self, raw_id: str) -> str | None:
        """The id ``raw_id`` names (an id or an alias), or None."""
        canon = domain.canonical_id(raw_id)
        found = self.by_canon.get(canon)
        if found is not None:
            return found
        return self.alias_canon[canon][1] if canon in self.alias_canon else None

    def resolve(self, raw_id: str, where: str = "") -> str:
        found = self.find(raw_id)
        if found is not None:
            return found
        canon = domain.canonical_id(raw_id)
        close = difflib.get_close_matches(canon, [*self.by_canon, *self.alias_canon], n=3, cutoff=0.5)
        names = [
            self.by_canon[c] if c in self.by_canon else f"{self.alias_canon[c][0]} ({self.alias_canon[c][1]})" for c in close
        ]
        also = " (or a Hugging Face id of one)" if self.alias_canon else ""
        hint = (
            f"did you mean {', '.join(names)}?"
            if names
            else f"known {self.kind} ids{also}: {', '.join(sorted(self.by_canon.values()))}"
        )
        prefix = f"{where}: " if where else ""
        raise UnknownIdError(f"{prefix}unknown {self.kind} id {raw_id!r}", hint=hint)


# Catalog (YAML) figure names → domain field names, so sources follow a figure through unit conversion.
_DOMAIN_NAMES = {
    "bf16_dense_tflop_per_s": "bf16_flop_per_s",
    "fp16_dense_tflop_per_s": "fp16_flop_per_s",
    "fp8_dense_tflop_per_s": "fp8_flop_per_s",
    "fp4_dense_tflop_per_s": "fp4_flop_per_s",
    "hbm_capacity_gib": "hbm_capacity_bytes",
    "cuda_memory_gib": "cuda_memory_bytes",
    "hbm_bandwidth_gbyte_per_s": "hbm_bandwidth_bytes_per_s",
    "nvlink_gbyte_per_s": "nvlink_bytes_per_s",
    "bandwidth_gbit_per_s": "bandwidth_bytes_per_s",
    "bandwidth_gbyte_per_s": "bandwidth_bytes_per_s",
    "latency_us": "latency_s",
    "activation_reserve_gib": "activation_reserve_bytes",
}
_NOT_FIGURES = {"source", "field_sources", "note", "name"}


_NOT_MODEL_FIGURES = ("hf_aliases", "hf_id")


def _set(entry: schemas.Sourced, name: str) -> bool:
    """A figure the entry gives (the architecture fields a model family lacks stay out of its sources)."""
    return name in entry.model_fields_set or name in ("num_experts", "experts_per_token")


def _sources_of(entry: schemas.Sourced, figures: Iterable[str]) -> dict[str, str]:
    """Source id of every figure, keyed by the domain field name."""
    out: dict[str, str] = {}
    for name in figures:
        if name in _NOT_FIGURES or (name.startswith(("bandwidth_", "node_")) and getattr(entry, name, None) is None):
            continue
        out[_DOMAIN_NAMES.get(name, name)] = entry.source_of(name)
    return out


def _check_source(raw: _Raw, source_id: str | None, where: str) -> None:
    if source_id is not None and source_id not in raw.sources:
        raise CatalogError(f"{where}: source {source_id!r} is not in sources.yaml")


def _to_domain(raw: _Raw, require_efficiency: bool = True) -> domain.Catalog:
    if raw.engines_file is None or not raw.engines:
        raise CatalogError("engines.yaml: no serving engine found in any catalog directory")
    for kind in ("gpus", "models", "links"):
        for key, entry in getattr(raw, kind).items():
            where = f"{raw.origin[f'{kind}:{domain.canonical_id(key)}']}: {key}"
            for src in {entry.source, *entry.field_sources.values()}:
                _check_source(raw, src, where)
    for key, entry in raw.engines.items():
        where = f"{raw.origin[f'engines:{domain.canonical_id(key)}']}: {key}"
        for src in {entry.source, *entry.field_sources.values()}:
            _check_source(raw, src, where)
    _check_source(raw, raw.engines_file.net_efficiency_source, f"{raw.origin['engines:']}: net_efficiency_source")

    gpus = {
        key: domain.GpuSpec(
            id=key,
            name=g.name,
            bf16_flop_per_s=tflop_per_s_to_flop_per_s(g.bf16_dense_tflop_per_s),
            fp16_flop_per_s=tflop_per_s_to_flop_per_s(g.fp16_dense_tflop_per_s),
            fp8_flop_per_s=None if g.fp8_dense_tflop_per_s is None else tflop_per_s_to_flop_per_s(g.fp8_dense_tflop_per_s),
            fp4_flop_per_s=None if g.fp4_dense_tflop_per_s is None else tflop_per_s_to_flop_per_s(g.fp4_dense_tflop_per_s),
            hbm_capacity_bytes=gib_to_bytes(g.hbm_capacity_gib),
            cuda_memory_bytes=None if g.cuda_memory_gib is None else gib_to_bytes(g.cuda_memory_gib),
            hbm_bandwidth_bytes_per_s=gbyte_per_s_to_bytes_per_s(g.hbm_bandwidth_gbyte_per_s),
            tdp_w=g.tdp_w,
            idle_w=g.idle_w,
            decode_busy_w=g.decode_busy_w,
            nvlink_bytes_per_s=gbyte_per_s_to_bytes_per_s(g.nvlink_gbyte_per_s),
            pcie_generation=g.pcie_generation,
            gpus_per_node=g.gpus_per_node,
            nvlink_domain_gpus=g.nvlink_domain_gpus or g.gpus_per_node,
            node_compute_nics=g.node_compute_nics,
            node_north_south_nics=g.node_north_south_nics,
            node_max_power_w=g.node_max_power_w,
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
            moe_intermediate_size=m.moe_intermediate_size,
            num_shared_experts=m.num_shared_experts,
            num_dense_layers=m.num_dense_layers,
            kv_lora_rank=m.kv_lora_rank,
            qk_rope_head_dim=m.qk_rope_head_dim,
            qk_nope_head_dim=m.qk_nope_head_dim,
            v_head_dim=m.v_head_dim,
            q_lora_rank=m.q_lora_rank,
            sliding_window_tokens=m.sliding_window_tokens,
            num_sliding_layers=m.num_sliding_layers,
            hf_id=m.hf_id,
            hf_aliases=tuple(m.hf_aliases),
            # hf_id comes with the config.json page that `source` names; the aliases are not figures
            sources=_sources_of(m, [f for f in schemas.ModelEntry.model_fields if f not in _NOT_MODEL_FIGURES and _set(m, f)])
            | ({"hf_id": m.source_of("hf_id")} if m.hf_id else {}),
        )
        for key, m in sorted(raw.models.items())
    }
    IdIndex.models(models, {k: str(raw.origin[f"models:{domain.canonical_id(k)}"]) for k in models})  # no id claimed twice
    components = _components(raw)
    curves = _transfer_curves(raw)
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
            sources=_sources_of(lk, [f for f in schemas.LinkEntry.model_fields if f != "port"]),
            port=_link_port(raw, key, lk, components),
            transfer_curve=curves.get(lk.kind),
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

    entries: dict[str, tuple[str, schemas.PowerEntry]] = {}
    for key, pe in raw.power.items():
        where = f"{raw.origin[f'power:{domain.canonical_id(key)}']}: gpus.{key}"
        _check_source(raw, pe.source, where)
        entries[gpu_index.resolve(key, where)] = (where, pe)
    power = power_table(entries, gpu_index.resolve)

    engines = _engines(raw, gpu_index)
    engine_index = IdIndex("engine", engines)
    default_engine = engine_index.resolve(raw.engines_file.default, f"{raw.origin['engines:']}: default")
    engine_efficiency: dict[str, dict[str, domain.Efficiency]] = {}
    for engine_id in engines:
        unsupported = engines[engine_id].unsupported_gpus
        efficiency = _efficiency(raw, gpu_index, engine_id, engine_index, unsupported)
        claimed = sorted(set(unsupported) & set(efficiency))
        if claimed:
            raise CatalogError(
                f"efficiency/{engine_id}.yaml: {', '.join(claimed)}: a factor set for a GPU that engine {engine_id} "
                "does not run on (engines.yaml unsupported_gpus)",
                hint="drop the entry, or the GPU from the engine's unsupported_gpus",
            )
        missing = sorted(set(gpus) - set(efficiency) - set(unsupported))
        if missing and require_efficiency:
            raise CatalogError(
                f"efficiency/{engine_id}.yaml: no efficiency entry for {', '.join(missing)} under engine {engine_id}",
                hint="fit one with planner calibrate, or add transferred_from with a note",
            )
        engine_efficiency[engine_id] = efficiency
    uncertainty = {e: u for e in engines if (u := _uncertainty(raw, e, engine_index, gpu_index)) is not None}
    sources = {
        key: domain.Source(id=key, title=s.title, url=s.url, as_of=str(s.as_of), note=s.note)
        for key, s in sorted(raw.sources.items())
    }
    speculative = _speculative(raw, IdIndex.models(models))
    return domain.Catalog(
        gpus=gpus,
        models=models,
        links=links,
        efficiency=engine_efficiency[default_engine],
        prices=tuple(sorted(prices, key=lambda p: (p.gpu, p.provider, p.region))),
        servers=tuple(sorted(servers, key=lambda s: s.gpu)),
        electricity_usd_per_kwh=raw.electricity.usd_per_kwh if raw.electricity else None,
        pue=raw.pue.value if raw.pue else None,
        engine=engines[default_engine],
        sources=sources,
        origin={k: str(v) for k, v in sorted(raw.origin.items())},
        engines=engines,
        engine_efficiency=engine_efficiency,
        default_engine=default_engine,
        power=dict(sorted(power.items())),
        speculative=speculative,
        network_components=components,
        network=_network(raw),
        engine_uncertainty=uncertainty,
    )


def _uncertainty(raw: _Raw, engine_id: str, engine_index: IdIndex, gpu_index: IdIndex) -> domain.TimeUncertainty | None:
    """The engine's measured spread: the last efficiency file of the engine (or without an engine) that has one."""
    out = None
    for path, doc in raw.efficiency:
        if doc.uncertainty is None:
            continue
        if doc.engine is not None and engine_index.resolve(doc.engine, f"{path}: engine") != engine_id:
            continue
        u = doc.uncertainty
        _check_source(raw, u.source, f"{path}: uncertainty")
        ho = u.held_out
        out = domain.TimeUncertainty(
            ttft_log_sigma=u.ttft_log_sigma,
            tpot_log_sigma=u.tpot_log_sigma,
            correlation=u.correlation,
            rows=u.rows,
            gpus=tuple(gpu_index.resolve(g, f"{path}: uncertainty.gpus") for g in u.gpus),
            fitted_on=u.fitted_on,
            method=u.method,
            source=u.source,
            as_of=str(u.as_of),
            held_out_rows=0 if ho is None else ho.rows,
            held_out_ttft_log_sigma=None if ho is None else ho.ttft_log_sigma,
            held_out_tpot_log_sigma=None if ho is None else ho.tpot_log_sigma,
            checked_on="" if ho is None else ho.checked_on,
        )
    return out


def _components(raw: _Raw) -> dict[str, domain.NetworkComponent]:
    out = {}
    for key, c in sorted(raw.components.items()):
        _check_source(raw, c.source, f"{raw.origin[f'components:{domain.canonical_id(key)}']}: components.{key}")
        out[key] = domain.NetworkComponent(
            id=key,
            name=c.name,
            part=c.part,
            usd=c.usd,
            ports=c.ports,
            as_of=None if c.as_of is None else str(c.as_of),
            source=c.source,
            note=c.note,
        )
    return out


def _link_port(
    raw: _Raw, key: str, lk: schemas.LinkEntry, components: Mapping[str, domain.NetworkComponent]
) -> domain.LinkPort | None:
    """A link's ``port`` with each component id resolved (any case and separator) and checked to be that part."""
    if lk.port is None:
        return None
    where = f"{raw.origin[f'links:{domain.canonical_id(key)}']}: links.{key}.port"
    index = IdIndex("network component", components)
    parts: dict[str, str | None] = {}
    for part in ("nic", "switch", "cable"):
        ref = getattr(lk.port, part)
        if ref is None:
            parts[part] = None
            continue
        found = index.resolve(ref, f"{where}.{part}")  # an UnknownIdError (a CatalogError) lists close matches
        if components[found].part != part:
            raise CatalogError(f"{where}.{part}: component {found!r} is a {components[found].part}, not a {part}")
        parts[part] = found
    return domain.LinkPort(nic=parts["nic"], switch=parts["switch"], cable=parts["cable"])


def _transfer_curves(raw: _Raw) -> dict[str, domain.TransferCurve]:
    """Each kind's measured curve, its points per port, checked to reproduce them within its stated error."""
    out = {}
    for kind, c in sorted(raw.transfer_curves.items()):
        where = f"{raw.origin[f'transfer_curves:{kind}']}: transfer_curves.{kind}"
        _check_source(raw, c.source, where)
        line_rate = gbit_per_s_to_bytes_per_s(c.measured_port_gbit_per_s)
        curve = domain.TransferCurve(
            kind=kind,
            latency_s=us_to_s(c.latency_us),
            peak_frac=c.peak_frac,
            measured_line_rate_bytes_per_s=line_rate,
            points=tuple(
                domain.TransferPoint(message_bytes=p.total_bytes / c.ports, time_s=p.transfer_ms / 1e3) for p in c.points
            ),
            max_rel_error_frac=c.max_rel_error_frac,
            source=c.source,
            note=c.note,
        )
        for i, p in enumerate(curve.points):
            predicted = curve.latency_s + p.message_bytes / (curve.peak_frac * line_rate)
            error = abs(predicted - p.time_s) / p.time_s
            if error > c.max_rel_error_frac * (1 + 1e-9) + 1e-12:
                raise CatalogError(
                    f"{where}: points[{i}]: the curve gives {predicted * 1e3:.4g} ms where {p.time_s * 1e3:.4g} ms was "
                    f"measured ({100 * error:.1f} % off, more than max_rel_error_frac {c.max_rel_error_frac:g})",
                    hint="refit latency_us and peak_frac on the points (planner.calibrate.netfit) or state the error",
                )
        out[kind] = curve
    return out


def _network(raw: _Raw) -> domain.NetworkSpec:
    n = raw.network
    if n is None:
        return domain.NetworkSpec()
    where = f"{raw.origin['network:']}: network"
    _check_source(raw, n.amortization_source, f"{where}.amortization_source")
    _check_source(raw, n.topology_source, f"{where}.topology_source")
    return domain.NetworkSpec(
        amortization_years=n.amortization_years,
        amortization_source=n.amortization_source,
        switch_ports_per_port=n.switch_ports_per_port,
        cables_per_port=n.cables_per_port,
        topology_source=n.topology_source,
    )


def _speculative(raw: _Raw, model_index: IdIndex) -> dict[str, domain.SpeculativeDefaults]:
    """``speculative.yaml``: each method's defaults, a mean acceptance length turned into the per-token rate."""
    out: dict[str, domain.SpeculativeDefaults] = {}
    for key, e in sorted(raw.speculative.items()):
        where = f"{raw.origin[f'speculative:{domain.canonical_id(key)}']}: methods.{key}"
        for src in {e.source, *e.field_sources.values()}:
            _check_source(raw, src, where)
        rate = e.acceptance_rate
        if e.mean_acceptance_length is not None and e.draft_tokens is not None:
            rate = domain.acceptance_for_tokens_per_step(e.mean_acceptance_length, e.draft_tokens)
        sources = {"draft_layers": e.source_of("draft_layers")}
        if e.draft_tokens is not None:
            sources["draft_tokens"] = e.source_of("draft_tokens")
        if rate is not None:
            sources["acceptance_rate"] = e.source_of(
                "mean_acceptance_length" if e.mean_acceptance_length is not None else "acceptance_rate"
            )
        if e.models:
            sources["models"] = e.source_of("models")
        method: domain.SpeculativeMethod = "mtp" if key == "mtp" else "eagle" if key == "eagle" else "ngram"
        out[key] = domain.SpeculativeDefaults(
            method=method,
            draft_tokens=e.draft_tokens,
            acceptance_rate=rate,
            mean_acceptance_length=e.mean_acceptance_length,
            draft_layers=e.draft_layers,
            models=tuple(sorted({model_index.resolve(m, f"{where}: models") for m in e.models})),
            sources=dict(sorted(sources.items())),
            note=e.note,
        )
    return out


def power_factors(gpu: str, e: schemas.PowerEntry) -> domain.PowerFactors:
    """A fitted ``power.yaml`` entry as the domain's step-power model (a transferred one has no
    factors of its own: :func:`power_table` lends it its donor's)."""
    if e.idle_w is None or e.active_w is None or e.flop_w is None or e.hbm_w is None or e.cap_w is None:
        raise CatalogError(f"gpus.{gpu}: a transferred power entry has no factors of its own")
    return domain.PowerFactors(
        gpu=gpu,
        idle_w=e.idle_w,
        active_w=e.active_w,
        flop_w=e.flop_w,
        hbm_w=e.hbm_w,
        cap_w=e.cap_w,
        source=e.source or "",
        as_of=str(e.as_of),
    )


def power_table(
    entries: Mapping[str, tuple[str, schemas.PowerEntry]], resolve: Callable[[str, str], str] = lambda k, _: k
) -> dict[str, domain.PowerFactors]:
    """``power.yaml`` entries (GPU id -> (where, entry)) as step-power models per GPU, sorted by id:
    a ``transferred_from`` entry gets its donor's fitted factors, marked with the donor's id
    (``PowerFactors.transferred_from``); a donor without fitted factors is an error."""
    fitted: dict[str, domain.PowerFactors] = {}
    transferred: dict[str, tuple[str, str]] = {}
    for gpu, (where, e) in entries.items():
        if e.transferred_from is not None:
            transferred[gpu] = (resolve(e.transferred_from, where), where)
        else:
            fitted[gpu] = power_factors(gpu, e)
    out = dict(fitted)
    for gpu, (donor, where) in sorted(transferred.items()):
        if donor not in fitted:
            raise CatalogError(f"{where}: transferred_from {donor!r}, which has no fitted power entry")
        out[gpu] = replace(fitted[donor], gpu=gpu, transferred_from=donor)
    return dict(sorted(out.items()))


def _engines(raw: _Raw, gpu_index: IdIndex) -> dict[str, domain.EngineSpec]:
    assert raw.engines_file is not None
    net: dict[str, float] = dict(sorted(raw.engines_file.net_efficiency_frac.items()))
    out: dict[str, domain.EngineSpec] = {}
    for key, e in sorted(raw.engines.items()):
        where = f"{raw.origin[f'engines:{domain.canonical_id(key)}']}: {key}"
        overrides = {}
        for gpu_key, lim in e.gpu_overrides.items():
            gpu = gpu_index.resolve(gpu_key, f"{where}: gpu_overrides")
            overrides[gpu] = domain.EngineLimits(
                max_num_seqs=lim.max_num_seqs or e.max_num_seqs,
                max_num_batched_tokens=lim.max_num_batched_tokens or e.max_num_batched_tokens,
            )
        unsupported = {gpu_index.resolve(g, f"{where}: unsupported_gpus"): why for g, why in e.unsupported_gpus.items()}
        out[key] = domain.EngineSpec(
            id=key,
            name=e.name,
            version=e.version,
            gpu_memory_utilization_frac=e.gpu_memory_utilization_frac,
            activation_reserve_bytes=gib_to_bytes(e.activation_reserve_gib),
            net_efficiency_frac=net,
            source=e.source,
            max_num_seqs=e.max_num_seqs,
            max_num_batched_tokens=e.max_num_batched_tokens,
            chunked_prefill=e.chunked_prefill,
            decode_first=e.decode_first,
            gpu_overrides=dict(sorted(overrides.items())),
            unsupported_gpus=dict(sorted(unsupported.items())),
            sources={
                **_sources_of(e, [f for f in schemas.EngineEntry.model_fields if f != "unsupported_gpus" or unsupported]),
                "net_efficiency_frac": raw.engines_file.net_efficiency_source,
            },
            note=e.note,
            kv_cache=None
            if e.kv_cache is None
            else domain.KvCacheRule(
                rule=e.kv_cache.rule,
                # vLLM's rule without its own fraction uses the engine's gpu_memory_utilization (sourced above);
                # SGLang's None means its own per-GPU default (planner.perf.memory.sglang_mem_fraction_static)
                memory_frac=e.gpu_memory_utilization_frac
                if e.kv_cache.memory_frac is None and e.kv_cache.rule == "vllm"
                else e.kv_cache.memory_frac,
                block_tokens=e.kv_cache.block_tokens,
                runtime_reserve_bytes=gib_to_bytes(e.kv_cache.runtime_reserve_gib),
                sampler_logit_copies=e.kv_cache.sampler_logit_copies,
                cuda_graph_bytes=gib_to_bytes(e.kv_cache.cuda_graph_gib),
                profile_activation=e.kv_cache.profile_activation,
            ),
        )
    return out


def with_provider(catalog: domain.Catalog, raw: str, where: str = "pricing.provider") -> domain.Catalog:
    """The catalog with ``raw``'s rows (a provider named in prices.yaml, any case) as every GPU's list price:
    one price basis. GPUs the provider does not list have no default price afterwards, so the default
    hardware leaves them out and listing one is an error."""
    providers = sorted({p.provider for p in catalog.prices})
    match = next((p for p in providers if p.casefold() == raw.strip().casefold()), None)
    if match is None:
        raise InputError(f"{where}: {raw!r} has no prices in the catalog", hint=f"providers: {', '.join(providers)}")
    rows = [p for p in catalog.prices if p.provider == match]
    if len({p.gpu for p in rows}) != len(rows):
        raise InputError(f"{where}: {match} has more than one price row for a GPU; keep one per GPU in prices.yaml")
    return replace(catalog, prices=tuple(replace(p, default=p.provider == match) for p in catalog.prices))


def select_engine(catalog: domain.Catalog, raw: str | None, where: str = "--engine") -> domain.Catalog:
    """The catalog with ``raw`` (``NAME`` or ``NAME@VERSION``; None: the default engine) selected:
    its scheduling in ``engine`` and its factors in ``efficiency``."""
    if raw is None:
        return catalog
    name, at, version = raw.strip().partition("@")
    engine_id = IdIndex("engine", catalog.engines).resolve(name, where)
    spec = catalog.engines[engine_id]
    if at and not version.strip():
        hint = f"{engine_id}@{spec.version} or {engine_id}"
        raise InputError(f"{where}: {raw.strip()!r} names no version after '@'", hint=hint)
    if version and version.strip() != spec.version:
        raise InputError(
            f"{where}: engine {engine_id} has no profile for version {version.strip()!r}",
            hint=f"known versions of {engine_id}: {spec.version} (planner catalog show {engine_id})",
        )
    if engine_id == catalog.engine.id:
        return catalog
    return replace(catalog, engine=spec, efficiency=catalog.engine_efficiency[engine_id])


def _efficiency_entries(raw: _Raw, engine_id: str, engine_index: IdIndex) -> dict[str, tuple[str, schemas.EfficiencyEntry, bool]]:
    """GPU id → (where, entry, whether its file names the engine) of one engine: its own files and the overlays
    without an engine, in load order."""
    out: dict[str, tuple[str, schemas.EfficiencyEntry, bool]] = {}
    for path, doc in raw.efficiency:
        if doc.engine is not None and engine_index.resolve(doc.engine, f"{path}: engine") != engine_id:
            continue
        seen: dict[str, str] = {}
        for key, entry in doc.efficiency.items():
            canon = domain.canonical_id(key)
            if canon in seen:
                raise CatalogError(f"{path}: efficiency ids {seen[canon]!r} and {key!r} are the same id")
            seen[canon] = key
            out[canon] = (f"{path}: {key}", entry, doc.engine is not None)
    return out


def _efficiency(
    raw: _Raw, gpu_index: IdIndex, engine_id: str, engine_index: IdIndex, unsupported: Collection[str] = ()
) -> dict[str, domain.Efficiency]:
    """One engine's factor sets. An overlay without an engine (it applies to every engine) gives none to a GPU the
    engine does not run on (``unsupported``): that entry is left out for this engine."""
    fitted: dict[str, domain.Efficiency] = {}
    transferred: dict[str, tuple[str, str]] = {}
    no_curve: set[str] = set()
    for key, (where, e, named) in _efficiency_entries(raw, engine_id, engine_index).items():
        gpu = gpu_index.resolve(key, where)
        if not named and gpu in unsupported:
            continue
        _check_source(raw, e.source, where)
        if e.transferred_from is not None:
            transferred[gpu] = (gpu_index.resolve(e.transferred_from, where), where)
            if e.without_allreduce_curve:
                no_curve.add(gpu)
            continue
        for name, block in (("fp8", e.fp8), ("fp4", e.fp4)):
            if block is not None:
                _check_source(raw, block.source, f"{where}: {name}")
        fitted[gpu] = _factors(
            gpu,
            e,
            fp8=None if e.fp8 is None else _factors(gpu, e.fp8),
            fp4=None if e.fp4 is None else _factors(gpu, e.fp4),
        )
    out = dict(fitted)
    for gpu, (first, where) in sorted(transferred.items()):
        donor, seen = first, {gpu}
        while donor in transferred and donor not in fitted:  # a chain (an overlay may make the donor borrow too)
            if donor in seen:
                raise CatalogError(f"{where}: transferred_from {first!r} lends in a circle ({' -> '.join(sorted(seen))})")
            seen.add(donor)
            donor = transferred[donor][0]
        if donor not in fitted:
            raise CatalogError(f"{where}: transferred_from {first!r}, which has no fitted entry")
        lent = fitted[donor]
        fp8 = None if lent.fp8 is None else replace(lent.fp8, gpu=gpu, transferred_from=donor)
        fp4 = None if lent.fp4 is None else replace(lent.fp4, gpu=gpu, transferred_from=donor)
        if gpu in no_curve:  # the donor's measured all-reduce curves stay with the donor's links
            fp8 = None if fp8 is None else replace(fp8, allreduce_curve=(), allreduce_curve_withheld=True)
            fp4 = None if fp4 is None else replace(fp4, allreduce_curve=(), allreduce_curve_withheld=True)
            lent = replace(lent, allreduce_curve=(), allreduce_curve_withheld=True)
        out[gpu] = replace(lent, gpu=gpu, transferred_from=donor, fp8=fp8, fp4=fp4)
    moe = _moe_serving(raw, engine_id, engine_index)
    if moe is not None:
        out = {gpu: replace(eff, moe_serving=moe) for gpu, eff in out.items()}
    return dict(sorted(out.items()))


def _moe_serving(raw: _Raw, engine_id: str, engine_index: IdIndex) -> domain.MoeServing | None:
    """The engine's MoE serving factors: the last efficiency file of the engine that gives them."""
    out = None
    for path, doc in raw.efficiency:
        m = doc.moe_serving
        if m is None or doc.engine is None or engine_index.resolve(doc.engine, f"{path}: engine") != engine_id:
            continue
        _check_source(raw, m.source, f"{path}: moe_serving")
        sigma = {} if m.sigma is None else m.sigma.model_dump(exclude_none=True)
        out = domain.MoeServing(
            compute_frac_scale=m.compute_frac_scale,
            memory_frac_scale=m.memory_frac_scale,
            decode_fixed_s=m.decode_fixed_s,
            request_fixed_s=m.request_fixed_s,
            fitted_on=m.fitted_on,
            source=m.source,
            as_of=str(m.as_of),
            sigmas=tuple((k, float(v)) for k, v in sigma.items()),
        )
    return out


def _factors(
    gpu: str, e: schemas.EfficiencyEntry, fp8: domain.Efficiency | None = None, fp4: domain.Efficiency | None = None
) -> domain.Efficiency:
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
        prefill_sync_frac=e.prefill_sync_frac or 0.0,
        request_fixed_s=e.request_fixed_s or 0.0,
        gemm_half_dim=e.gemm_half_dim or 0.0,
        gemm_dim_exp=e.gemm_dim_exp or 1.0,
        overlap_q=e.overlap_q,
        allreduce_curve=tuple(
            (tp, tuple((float(b), float(t)) for b, t in points)) for tp, points in sorted((e.allreduce_curve or {}).items())
        ),
        fitted_on=e.fitted_on or "",
        fp8=fp8,
        fp4=fp4,
    )


def load_catalog(extra_dirs: Sequence[Path] = (), *, require_efficiency: bool = True) -> domain.Catalog:
    """Load, merge and validate every catalog directory; raises :class:`CatalogError`. The engine
    ``PLANNER_ENGINE`` names (else engines.yaml's default) is selected.

    ``require_efficiency=False`` is for calibration, which fits the factors the catalog lacks.
    """
    catalog = _to_domain(_load_raw(catalog_dirs(extra_dirs)), require_efficiency)
    engine = os.environ.get(ENGINE_ENV_VAR, "").strip()
    return select_engine(catalog, engine, ENGINE_ENV_VAR) if engine and require_efficiency else catalog
