"""The proposal document (what ``planner check`` and ``planner simulate`` read).

Two forms load:

1. a hand-written proposal::

       workload: workload.yaml          # a path (relative to this file) or an inline workload
       pools:
         - {role: prefill, gpu: h100-sxm, tp: 8, replicas: 7, link: ib-ndr-400}
         - {role: decode, gpu: h100-sxm, tp: 4, replicas: 10, max_batch: 64}
         # an MoE model's pool may split its replicas: expert parallel (moe_ep), data-parallel attention
         # (attention_dp); each divides tp, both default 1 (plain tensor parallelism)
       policy:                          # optional thresholds for planner check
         min_headroom_frac: 0.1
         max_cost_above_optimal_frac: 0.25

2. the plan ``planner size --format yaml`` (or json) writes: its ``inputs.workload`` is the
   workload, its ``data.pools`` and ``data.routing`` the deployment, its ``inputs.engine`` the
   serving engine it was sized for.

Either form may name an ``engine:`` (``NAME`` or ``NAME@VERSION``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from planner import domain
from planner.domain import Role
from planner.errors import InputError
from planner.io.catalog import IdIndex, format_validation_error
from planner.io.envelope import envelope_command
from planner.io.schemas import NonNegative, Positive, Strict
from planner.io.sources import check_path_text
from planner.io.workload import EngineRef, WorkloadSpec, read_workload_spec
from planner.io.workload import to_domain as workload_to_domain
from planner.io.yamlio import loads, read_text
from planner.perf.memory import replica_nodes


class PoolSpec(Strict):
    role: Role
    gpu: str
    tp: Annotated[int, Field(ge=1, le=256)]
    """GPUs per replica: a TP degree within one node, or up to 256 for an expert-parallel replica across nodes."""
    replicas: Annotated[int, Field(ge=0, le=100_000)]
    """Replicas of ``tp`` GPUs each."""
    max_batch: Annotated[int, Field(ge=1, le=100_000)] | None = None
    """Decode and co-located: most sequences decoded together (default 64); prefill: 1."""
    token_budget: Annotated[int, Field(ge=2, le=1_000_000)] | None = None
    """Co-located only: tokens per iteration (chunked prefill budget; default 2048)."""
    link: str | None = None
    """Prefill only: the link the KV cache leaves on."""
    attention_dp: Annotated[int, Field(ge=1, le=256)] = 1
    """Data-parallel attention groups in each replica (must divide ``tp``; default 1: TP attention)."""
    moe_ep: Annotated[int, Field(ge=1, le=256)] = 1
    """Expert-parallel groups the routed experts split over (MoE models; must divide ``tp``; default 1)."""
    pp: Annotated[int, Field(ge=1, le=64)] = 1
    """Pipeline stages each replica's ``tp`` GPUs form (``tp/pp`` per stage, a TP group in one node; default 1)."""
    nodes_per_replica: Annotated[int, Field(ge=1, le=256)] | None = None
    """Whole nodes each replica spans (what ``planner size`` writes for a multi-node replica; derived from ``tp`` and
    the GPU's node when absent, and must agree with it when given)."""

    @field_validator("attention_dp", "moe_ep")
    @classmethod
    def _divides_tp(cls, value: int, info: ValidationInfo) -> int:
        tp = info.data.get("tp")
        if isinstance(tp, int) and tp % value:
            raise ValueError(f"{value} does not divide tp {tp} (the replica's GPUs split into groups of tp/{info.field_name})")
        return value

    @model_validator(mode="after")
    def _role_fields(self) -> PoolSpec:
        if self.role == "prefill" and self.link is None:
            raise ValueError("a prefill pool names the link its KV cache leaves on (link: ...)")
        if self.role != "prefill" and self.link is not None:
            raise ValueError("only prefill pools take a link")
        if self.role != "colocated" and self.token_budget is not None:
            raise ValueError("only co-located pools take a token_budget")
        return self


class LinkUseSpec(Strict):
    link: str
    ports: Annotated[int, Field(ge=0)] | None = None
    """NIC ports on the prefill side (default: one per prefill GPU on this link)."""


class PolicySpec(Strict):
    budget_usd_per_month: Positive | None = None
    power_cap_kw: Positive | None = None
    min_headroom_frac: Annotated[float, Field(ge=0, lt=1)] | None = None
    """Every pool keeps at least this share of its capacity free (utilization <= 1 − this)."""
    max_cost_above_optimal_frac: NonNegative | None = None
    """EFF001: warn when the proposal costs more than this fraction above the optimal plan."""
    redundancy: Annotated[int, Field(ge=0, le=16)] | None = None
    """Spare replicas every pool must have (the SLOs hold with this many out)."""


class ProposalSpec(Strict):
    workload: WorkloadSpec | str
    pools: Annotated[list[PoolSpec], Field(min_length=1, max_length=1000)]
    links: list[LinkUseSpec] | None = None
    routing: dict[str, dict[str, Annotated[float, Field(ge=0, le=1)]]] | None = None
    """Share of each class's requests per pool key (default: in proportion to capacity)."""
    policy: PolicySpec = Field(default_factory=PolicySpec)
    engine: EngineRef | None = None
    """Serving engine the proposal is evaluated under: ``NAME`` or ``NAME@VERSION`` (default: its
    workload's ``engine:``, else the catalog's default; ``--engine`` overrides it). A plan written
    by ``planner size`` carries the engine it was sized for (``inputs.engine``)."""


def _engine_label(engine: Any) -> str | None:
    """``ID@VERSION`` of a plan's ``inputs.engine`` object (None where the plan has none)."""
    if engine is None:
        return None
    if not isinstance(engine, dict) or not isinstance(engine.get("id"), str):
        raise ValueError("inputs.engine: expected an object with id and version (as planner size writes it)")
    version = engine.get("version")
    return f"{engine['id']}@{version}" if isinstance(version, str) and version else engine["id"]


def _from_plan(data: dict[str, Any]) -> dict[str, Any]:
    """A ``planner size`` envelope → the proposal form."""
    inputs, body = data.get("inputs") or {}, data.get("data") or {}
    if data.get("status") != "ok":
        raise ValueError(f"this is a planner size result with status {data.get('status')!r}, not a plan")
    keep: tuple[str, ...] = ("role", "gpu", "tp", "pp", "attention_dp", "moe_ep", "nodes_per_replica", "replicas")
    keep += ("max_batch", "token_budget", "link")
    pools = [{k: p[k] for k in keep if p.get(k) is not None} for p in body.get("pools", [])]
    links = [{"link": lk["link"], "ports": lk["prefill_ports"]} for lk in body.get("links", [])]
    doc: dict[str, Any] = {"workload": inputs.get("workload"), "pools": pools, "links": links}
    engine = _engine_label(inputs.get("engine"))
    if engine is not None:
        doc["engine"] = engine
    if body.get("routing"):
        doc["routing"] = body["routing"]
    return doc


def parse_proposal(data: Any, origin: str, text: str = "") -> ProposalSpec:
    if not isinstance(data, dict):
        raise InputError(f"{origin}: a proposal is a YAML mapping with workload and pools")
    if envelope_command(data) == "size":  # a plan planner size wrote (YAML or JSON)
        try:
            data = _from_plan(data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InputError(f"{origin}: {exc}") from None
        text = ""  # line numbers refer to the plan's layout, not to these keys
    try:
        return ProposalSpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(Path(origin), text, exc)) from None


def read_proposal(path: Path) -> tuple[ProposalSpec, WorkloadSpec]:
    """The proposal and its workload (read from the path it names, relative to the proposal)."""
    spec, workload, _ = read_proposal_with_origin(path)
    return spec, workload


def read_proposal_with_origin(path: Path) -> tuple[ProposalSpec, WorkloadSpec, Path]:
    """:func:`read_proposal`, plus the file the workload is written in (the proposal itself for
    an inline workload): its ``calibration`` entry is relative to that file."""
    text = read_text(path)
    spec = parse_proposal(loads(text, str(path)), str(path), text)
    if isinstance(spec.workload, str):
        check_path_text(spec.workload, f"{path}: workload")
        workload_path = (path.parent / spec.workload) if not Path(spec.workload).is_absolute() else Path(spec.workload)
        return spec, read_workload_spec(workload_path), workload_path
    return spec, spec.workload, path


def to_domain(
    spec: ProposalSpec, workload_spec: WorkloadSpec, catalog: domain.Catalog, origin: str = "proposal"
) -> tuple[domain.Workload, domain.Deployment]:
    """Resolve ids; pools default ``max_batch`` 64 (decode, co-located) and ``token_budget`` 2048."""
    workload = workload_to_domain(workload_spec, catalog, origin)
    model = catalog.models[workload.model]
    gpus = IdIndex("GPU", catalog.gpus)
    links = IdIndex("link", catalog.links)
    pools = []
    for i, p in enumerate(spec.pools):
        where = f"{origin}: pools[{i}]"
        if p.moe_ep > 1 and not model.is_moe:
            raise InputError(
                f"{where}.moe_ep: {p.moe_ep}, but {model.id} is not a mixture-of-experts model",
                hint="expert parallelism applies to MoE models only; drop moe_ep",
            )
        gpu_id = gpus.resolve(p.gpu, where)
        nodes = replica_nodes(catalog.gpus[gpu_id], p.tp)
        if p.nodes_per_replica is not None and p.nodes_per_replica != nodes:
            raise InputError(
                f"{where}.nodes_per_replica: {p.nodes_per_replica}, but a replica of {p.tp} {gpu_id} GPUs spans {nodes} "
                f"node{'s' if nodes != 1 else ''} of {catalog.gpus[gpu_id].gpus_per_node}"
            )
        pools.append(
            domain.Pool(
                role=p.role,
                gpu=gpu_id,
                tp=p.tp,
                replicas=p.replicas,
                max_batch=1 if p.role == "prefill" else (p.max_batch or 64),
                token_budget=(p.token_budget or 2048) if p.role == "colocated" else None,
                link=None if p.link is None else links.resolve(p.link, where),
                attention_dp=p.attention_dp,
                moe_ep=p.moe_ep,
                nodes_per_replica=nodes,
                pp=p.pp,
            )
        )
    keys = [p.key for p in pools]
    duplicate = sorted({k for k in keys if keys.count(k) > 1})
    if duplicate:
        raise InputError(f"{origin}: pools: two pools are the same ({duplicate[0]}); merge their replicas")
    if spec.links is not None:
        uses = [
            domain.LinkUse(
                link=links.resolve(lk.link, f"{origin}: links"),
                ports=lk.ports if lk.ports is not None else sum(p.num_gpus for p in pools if p.link == lk.link),
            )
            for lk in spec.links
        ]
    else:
        used = sorted({p.link for p in pools if p.link is not None})
        uses = [domain.LinkUse(link=lk, ports=sum(p.num_gpus for p in pools if p.link == lk)) for lk in used]
    routing: dict[str, dict[str, float]] = {}
    if spec.routing is not None:
        names = {c.name for c in workload.classes}
        for cls, shares in spec.routing.items():
            if cls not in names:
                raise InputError(f"{origin}: routing: no class named {cls!r} in the workload")
            unknown = sorted(set(shares) - set(keys))
            if unknown:
                raise InputError(f"{origin}: routing.{cls}: no pool {unknown[0]!r}", hint=f"pool keys: {', '.join(keys)}")
            routing[cls] = dict(shares)
    return workload, domain.Deployment(pools=tuple(pools), links=tuple(uses), routing=routing)
