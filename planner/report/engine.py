"""How every output names the serving engine it was computed for, and says where its factors are borrowed.

JSON: ``inputs.engine`` is ``{id, name, version}``. Tables: one ``engine: NAME VERSION (ID@VERSION)``
line. CSV: a last ``engine`` column holding ``ID@VERSION`` on every row (the CSV stays one header
and plain rows). HTML: an ``engine`` row of the summary table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from planner.domain import Catalog, Efficiency, EngineSpec, Precision
from planner.units import HOURS_PER_MONTH

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

    from planner.api import EngineComparison


def engine_doc(engine: EngineSpec) -> dict[str, str]:
    """``inputs.engine`` of every JSON envelope."""
    return {"id": engine.id, "name": engine.name, "version": engine.version}


def engine_text(doc: Mapping[str, Any]) -> str:
    """``vLLM 0.12.0 (vllm@0.12.0)`` from an ``inputs.engine`` object."""
    name = " ".join(str(part) for part in (doc.get("name") or doc["id"], doc.get("version")) if part)
    return f"{name} ({label_of(doc)})"


def engine_line(engine: EngineSpec) -> str:
    """The line tables print: ``engine: vLLM 0.12.0 (vllm@0.12.0)``."""
    return f"engine: {engine_text(engine_doc(engine))}"


def with_engine_column(rows: Iterable[Mapping[str, Any]], engine: EngineSpec) -> list[dict[str, Any]]:
    """CSV rows with the engine label as their last column."""
    return [{**row, "engine": engine.label} for row in rows]


def label_of(doc: Any) -> str | None:
    """``ID@VERSION`` (or ``ID``) of an ``inputs.engine`` object as a saved result holds it; None if absent."""
    if isinstance(doc, str) and doc.strip():
        return doc.strip()
    if isinstance(doc, Mapping) and isinstance(doc.get("id"), str) and doc["id"]:
        version = doc.get("version")
        return f"{doc['id']}@{version}" if isinstance(version, str) and version else str(doc["id"])
    return None


def withheld_note(eff: Efficiency) -> str:
    """What a transferred warning adds when the donor's all-reduce curves were not lent (the H800's NVLink)."""
    if not eff.allreduce_curve_withheld:
        return ""
    return "; not its measured all-reduce curves: the ring formula on this GPU's own links"


def transfer_warnings(catalog: Catalog, gpus: Iterable[str], precision: Precision, *, power: bool = True) -> list[str]:
    """One warning per GPU (of a plan, a proposal, an estimate) whose factors under the selected
    engine were measured on another GPU (``Efficiency.transferred_from``), and, with ``power``, one
    per GPU whose step-power factors were (``PowerFactors.transferred_from``, ``power.yaml``)."""
    out = []
    for gpu in sorted(set(gpus)):
        eff = catalog.efficiency.get(gpu)
        if eff is not None and eff.transferred_from:
            mine = eff.for_precision(precision)
            out.append(
                f"{gpu} has no {catalog.engine.id} measurements of its own; its efficiency factors are those of "
                f"{eff.transferred_from} ({mine.fitted_on}{withheld_note(mine)})"
            )
        pf = catalog.power.get(gpu) if power else None
        if pf is not None and pf.transferred_from:
            out.append(
                f"{gpu} has no power measurements of its own; its step-power factors are those of "
                f"{pf.transferred_from} ({pf.source}, power.yaml)"
            )
    return out


def engines_data(comparison: EngineComparison) -> list[dict[str, Any]]:
    """``data.engines[]`` of ``size --engine auto|A,B``: each engine's plan cost, in the order sized."""
    rows = []
    for r in comparison.runs:
        ev = r.result.plan.evaluation if r.result is not None else None
        rows.append(
            {
                "engine": engine_doc(r.engine),
                "feasible": ev is not None,
                "chosen": r is comparison.best,
                "usd_per_month": None if ev is None else ev.usd_per_hour * HOURS_PER_MONTH,
                "num_gpus": None if ev is None else ev.num_gpus,
                "message": None if r.infeasible is None else r.infeasible.message,
            }
        )
    return rows


def engines_table(rows: list[dict[str, Any]]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="engines compared")
    for col in ("engine", "GPUs", "USD/month", ""):
        t.add_column(col, justify="left" if col in ("engine", "") else "right")
    for row in rows:
        if not row["feasible"]:
            t.add_row(escape(label_of(row["engine"]) or ""), "-", "infeasible", "")
            continue
        t.add_row(
            escape(label_of(row["engine"]) or ""),
            str(row["num_gpus"]),
            f"{row['usd_per_month']:,.0f}",
            "chosen" if row["chosen"] else "",
        )
    return t


# --------------------------------------------------------------------------- catalog list|show engines


def _scheduling(e: EngineSpec) -> dict[str, Any]:
    """An engine's release and scheduler defaults, as both ``catalog list`` and ``show`` give them."""
    return {
        "id": e.id,
        "name": e.name,
        "version": e.version,
        "max_num_seqs": e.max_num_seqs,
        "max_num_batched_tokens": e.max_num_batched_tokens,
        "chunked_prefill": e.chunked_prefill,
        "decode_first": e.decode_first,
    }


def engine_list_rows(catalog: Catalog) -> list[dict[str, Any]]:
    """``catalog list engines``: one row per engine, its scheduler defaults and the default marker."""
    return [
        {**_scheduling(e), "default": e.id == catalog.default_engine}
        for e in (catalog.engines[k] for k in sorted(catalog.engines))
    ]


def engine_list_table(rows: list[dict[str, Any]]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="engines (* the default; --engine NAME or NAME@VERSION selects one)")
    heads = {
        "id": "id",
        "name": "name",
        "version": "version",
        "max_num_seqs": "max seqs",
        "max_num_batched_tokens": "max batched tokens",
        "chunked_prefill": "chunked prefill",
        "decode_first": "decode first",
        "default": "default",
    }
    for col, head in heads.items():
        t.add_column(head, justify="right" if col.startswith("max_") else "left")
    for r in rows:
        cells = []
        for col in heads:
            v = r[col]
            cells.append(("*" if v else "") if col == "default" else ("yes" if v else "no") if isinstance(v, bool) else str(v))
        t.add_row(*(escape(c) for c in cells))
    return t


def _factor_set(eff: Efficiency | None, transferred_from: str | None) -> dict[str, Any] | None:
    if eff is None:
        return None
    return {
        "status": "transferred" if transferred_from else "fitted",
        "transferred_from": transferred_from,
        "fitted_on": eff.fitted_on,
    }


def engine_show_data(catalog: Catalog, engine_id: str) -> dict[str, Any]:
    """``catalog show ENGINE``: every field with its source id, the note, and per GPU which factor
    sets (bf16, fp8) are fitted, on what, or transferred from which GPU."""
    e = catalog.engines[engine_id]
    entry: dict[str, Any] = {
        **_scheduling(e),
        "gpu_memory_utilization_frac": e.gpu_memory_utilization_frac,
        "activation_reserve_bytes": e.activation_reserve_bytes,
        "gpu_overrides": {
            g: {"max_num_seqs": lim.max_num_seqs, "max_num_batched_tokens": lim.max_num_batched_tokens}
            for g, lim in sorted(e.gpu_overrides.items())
        },
        "net_efficiency_frac": dict(sorted(e.net_efficiency_frac.items())),
        **({"unsupported_gpus": dict(e.unsupported_gpus)} if e.unsupported_gpus else {}),
        "note": e.note,
    }
    sources: dict[str, str] = {}
    for f in entry:
        if f in ("id", "name", "note"):
            continue
        sources[f] = e.sources.get(f, e.source)
    factors = {}
    for gpu, eff in sorted(catalog.engine_efficiency.get(engine_id, {}).items()):
        factors[gpu] = {
            "bf16": _factor_set(eff, eff.transferred_from),
            **{
                name: _factor_set(block, block.transferred_from if block is not None else None)
                for name, block in (("fp8", eff.fp8), ("fp4", eff.fp4))
            },
        }
    return {
        "kind": "engines",
        "entry": entry,
        "default": e.id == catalog.default_engine,
        "source": e.source,
        "sources": {f: _source(catalog, s) for f, s in sources.items()},
        "efficiency": factors,
        "uncertainty": _uncertainty(catalog, engine_id),
        "moe_serving": _moe_serving(catalog, engine_id),
    }


def _moe_serving(catalog: Catalog, engine_id: str) -> dict[str, Any] | None:
    """The engine's MoE serving factors (applied to MoE models only), or None when it has none."""
    effs = catalog.engine_efficiency.get(engine_id, {})
    m = next((e.moe_serving for e in effs.values() if e.moe_serving is not None), None)
    if m is None:
        return None
    return {
        "compute_frac_scale": m.compute_frac_scale,
        "memory_frac_scale": m.memory_frac_scale,
        "decode_fixed_s": m.decode_fixed_s,
        "request_fixed_s": m.request_fixed_s,
        "sigma": dict(m.sigmas),
        "fitted_on": m.fitted_on,
        "source": _source(catalog, m.source),
        "as_of": m.as_of,
    }


def _uncertainty(catalog: Catalog, engine_id: str) -> dict[str, Any] | None:
    """The engine's measured spread (what ``planner study robust`` draws from), or None when it has none."""
    u = catalog.engine_uncertainty.get(engine_id)
    if u is None:
        return None
    return {
        "ttft_log_sigma": u.ttft_log_sigma,
        "tpot_log_sigma": u.tpot_log_sigma,
        "correlation": u.correlation,
        "rows": u.rows,
        "gpus": list(u.gpus),
        "fitted_on": u.fitted_on,
        "method": u.method,
        "source": _source(catalog, u.source),
        "held_out": {
            "rows": u.held_out_rows,
            "ttft_log_sigma": u.held_out_ttft_log_sigma,
            "tpot_log_sigma": u.held_out_tpot_log_sigma,
            "checked_on": u.checked_on,
        },
    }


def _source(catalog: Catalog, source_id: str) -> dict[str, Any]:
    s = catalog.sources.get(source_id)
    return {"id": source_id} if s is None else {"id": s.id, "title": s.title, "url": s.url, "as_of": s.as_of}


def _set_text(s: dict[str, Any] | None, width: int = 160, fallback: str = "the bf16 set") -> str:
    """A factor set in a table cell (``fitted_on`` cut at ``width`` characters; the JSON has it whole)."""
    if s is None:
        return f"none ({fallback} is used)"
    if s["status"] == "transferred":
        return f"transferred from {s['transferred_from']}"
    on = s["fitted_on"]
    return f"fitted on {on if len(on) <= width else on[: width - 1] + '…'}"


def engine_show_table(data: dict[str, Any]) -> Group:
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    e = data["entry"]
    t = Table(title=escape(f"engine {e['id']}@{e['version']}{' (default)' if data['default'] else ''}"))
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("source")
    for f, v in e.items():
        if f == "note":
            continue
        if isinstance(v, dict):
            shown = ", ".join(f"{k}: {_brief(x)}" for k, x in v.items()) or "none"
        else:
            shown = str(v)
        s = data["sources"].get(f)
        t.add_row(f, escape(shown), "" if s is None else escape(s["id"] + (f" ({s['as_of']})" if s.get("as_of") else "")))
    g = Table(title="efficiency factors per GPU")
    for col in ("GPU", "bf16", "fp8", "fp4"):
        g.add_column(col, overflow="fold")
    for gpu, sets in data["efficiency"].items():
        g.add_row(
            gpu,
            escape(_set_text(sets["bf16"])),
            escape(_set_text(sets["fp8"])),
            escape(_set_text(sets["fp4"], fallback="the fp8 set" if sets["fp8"] else "the bf16 set")),
        )
    parts: list[Any] = [t]
    if e.get("note"):
        parts.append(Text(f"note: {e['note']}"))
    parts.append(g)
    u = data.get("uncertainty")
    if u:
        ho = u["held_out"]
        check = (
            f"; held out ({ho['rows']} rows): TTFT {ho['ttft_log_sigma']:.3g}, TPOT {ho['tpot_log_sigma']:.3g}"
            if ho["rows"]
            else ""
        )
        parts.append(
            Text(
                f"measured spread (one-sigma of ln predicted/measured, {u['rows']} training rows): TTFT "
                f"{u['ttft_log_sigma']:.3g}, TPOT {u['tpot_log_sigma']:.3g}, correlation {u['correlation']:+.2f}{check}"
            )
        )
    else:
        parts.append(Text("measured spread: none (planner study robust leaves this engine's factors unperturbed)"))
    m = data.get("moe_serving")
    if m:
        req = "the dense value" if m["request_fixed_s"] is None else f"{m['request_fixed_s']:.4g} s"
        parts.append(
            Text(
                f"MoE serving factors (MoE models only): compute x{m['compute_frac_scale']:.4g}, memory "
                f"x{m['memory_frac_scale']:.4g}, decode iteration +{m['decode_fixed_s']:.4g} s, request latency {req}; "
                f"fitted on {m['fitted_on']}"
            )
        )
    return Group(*parts)


def _brief(x: Any) -> str:
    if isinstance(x, dict):
        return f"{x['max_num_seqs']} seqs / {x['max_num_batched_tokens']} tokens"
    return str(x)
