"""Where a plan keeps each class's prefix cache: the pools that hold it, the KV they reserve and hold per replica,
and the KV transfer the cache saves (the figures behind ``planner size``'s ``data.prefix_cache``)."""

from __future__ import annotations

from dataclasses import dataclass

from planner.domain import Catalog, Role, Workload
from planner.perf.evaluate import Evaluation, pool_replica
from planner.perf.memory import kv_bytes_per_token
from planner.perf.serving import cache_pools, mean_cached_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePool:
    """A pool that holds a class's cache: its reserve and its replica's whole KV capacity (None: the replica does
    not fit, which a verified plan never has)."""

    role: Role
    gpu: str
    tp: int
    replicas: int
    reserved_kv_tokens_per_replica: float
    kv_capacity_tokens_per_replica: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassCache:
    """One class's prefix cache in a plan."""

    name: str
    hit_frac: float
    location: str
    working_set_tokens: float
    cached_tokens_mean: float
    input_tokens_mean: float
    pools: tuple[CachePool, ...]
    kv_transfer_saved_bytes_per_s: float  # 0 with ``location: prefill`` (the decode pool keeps no cache)


def prefix_cache_figures(workload: Workload, evaluation: Evaluation, catalog: Catalog) -> tuple[ClassCache, ...]:
    """Per class with a prefix cache (in the workload's order): the pools of ``evaluation`` that route it and hold
    its cache, and the KV bytes/s the cache keeps off the link (``location: both``: the cached tokens' KV)."""
    kv_tok = kv_bytes_per_token(catalog.models[workload.model], workload.precision)
    out = []
    for c in workload.classes:
        pc = c.prefix_cache
        if pc is None:
            continue
        pools = []
        for pr in evaluation.pools:
            p = pr.pool
            if p.role not in cache_pools(c) or evaluation.routing.get(c.name, {}).get(p.key, 0.0) <= 0:
                continue
            rep = pool_replica(catalog, workload, p)
            pools.append(
                CachePool(
                    role=p.role,
                    gpu=p.gpu,
                    tp=p.tp,
                    replicas=p.replicas,
                    reserved_kv_tokens_per_replica=pc.working_set_tokens,
                    kv_capacity_tokens_per_replica=rep.memory.max_kv_tokens if rep is not None else None,
                )
            )
        saved = c.rate_rps * mean_cached_tokens(c) * kv_tok if pc.location == "both" else 0.0
        out.append(
            ClassCache(
                name=c.name,
                hit_frac=pc.hit_frac,
                location=pc.location,
                working_set_tokens=pc.working_set_tokens,
                cached_tokens_mean=mean_cached_tokens(c),
                input_tokens_mean=c.input_tokens.mean,
                pools=tuple(pools),
                kv_transfer_saved_bytes_per_s=saved,
            )
        )
    return tuple(out)
