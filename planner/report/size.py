"""Data, tables, markdown and procurement line items of ``planner size``."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from planner.domain import Catalog, LinkSpec, Pool, Pricing, Workload
from planner.optimize.sizing import Baseline, SizeResult, Solved
from planner.perf.bom import node_bom
from planner.perf.cost import (
    HOURS_PER_YEAR,
    gpu_fixed_usd_per_hour,
    network_amortization_years,
    port_bill,
    port_usd_per_hour,
)
from planner.perf.evaluate import Evaluation, LinkResult
from planner.perf.transfer import link_effective_bytes_per_s, link_transfer_latency_s
from planner.units import GB, HOURS_PER_MONTH, W_PER_KW, s_to_ms


def tp_label(pool: Pool) -> str:
    """The TP cell of a table: ``8``, or ``8 (EP 8, DP-attn 8)`` for an expert-parallel layout."""
    return f"{pool.tp} ({pool.layout})" if pool.layout else str(pool.tp)


def pool_rows(ev: Evaluation) -> list[dict[str, Any]]:
    return [
        {
            "role": pr.pool.role,
            "gpu": pr.pool.gpu,
            "tp": pr.pool.tp,
            **pr.pool.layout_keys(),
            "replicas": pr.pool.replicas,
            "num_gpus": pr.pool.num_gpus,
            "max_batch": pr.pool.max_batch,
            "token_budget": pr.pool.token_budget,
            "link": pr.pool.link,
            "utilization_frac": pr.utilization_frac,
            "power_kw": pr.power_w / W_PER_KW,
            "usd_per_hour": pr.usd_per_hour,
            "gpu_usd_per_hour": pr.gpu_usd_per_hour,
        }
        for pr in ev.pools
    ]


def predicted(ev: Evaluation) -> dict[str, Any]:
    """Worst class's percentiles; ``*_at_slo_ms`` are at each class's SLO percentile."""
    return {
        "ttft_p50_ms": max(s_to_ms(c.ttft_p50_s) for c in ev.classes),
        "ttft_at_slo_ms": max(s_to_ms(c.ttft_at_slo_s) for c in ev.classes),
        "tpot_p50_ms": max(s_to_ms(c.tpot_p50_s) for c in ev.classes),
        "tpot_at_slo_ms": max(s_to_ms(c.tpot_at_slo_s) for c in ev.classes),
        "by_class": [
            {
                "name": c.name,
                "ttft_p50_ms": s_to_ms(c.ttft_p50_s),
                "ttft_at_slo_pct_ms": s_to_ms(c.ttft_at_slo_s),
                "ttft_target_ms": s_to_ms(c.ttft_target_s),
                "ttft_slo_percentile": c.ttft_quantile,
                "tpot_p50_ms": s_to_ms(c.tpot_p50_s),
                "tpot_at_slo_pct_ms": s_to_ms(c.tpot_at_slo_s),
                "tpot_target_ms": s_to_ms(c.tpot_target_s),
                "tpot_slo_percentile": c.tpot_quantile,
                "meets_slo": c.meets_slo,
            }
            for c in ev.classes
        ],
    }


def cost(ev: Evaluation) -> dict[str, Any]:
    return {
        "usd_per_hour": ev.usd_per_hour,
        "usd_per_month": ev.usd_per_month,
        "usd_per_mtok": ev.usd_per_mtok,
        "currency": "USD",
    }


def line_items(ev: Evaluation, catalog: Catalog, workload: Workload) -> list[dict[str, Any]]:
    """Flat procurement rows: one per pool (GPU-months) and per priced part of each KV link's ports (NIC share,
    switch ports, cables), each with the source of its price."""
    items = []
    mode = workload.pricing.mode
    for pr in ev.pools:
        p = pr.pool
        gpu = catalog.gpus[p.gpu]
        price = catalog.default_price(p.gpu)
        basis = f"{mode}, {price.provider} {price.region}, as of {price.as_of}" if price and mode != "capex" else mode
        shape = f"{p.replicas} x TP{p.tp}" + (f" ({p.layout})" if p.layout else "") + (f" via {p.link}" if p.link else "")
        unit = pr.gpu_usd_per_hour * HOURS_PER_MONTH
        server = next((s for s in catalog.servers if s.gpu == p.gpu and s.capex_usd is not None), None)
        source = (server.source if server else None) if mode == "capex" else (price.source if price else None)
        items.append(
            {
                "sku": f"gpu:{p.gpu}",
                "description": f"{gpu.name}, {p.role} pool ({shape}), {basis}",
                "quantity": p.num_gpus,
                "unit_usd": unit,
                "extended_usd": unit * p.num_gpus,
                "period": "month",
                "source": source,
            }
        )
    if workload.pricing.whole_nodes:
        for nu in ev.nodes:
            if nu.stranded_gpus:
                unit = gpu_fixed_usd_per_hour(catalog, nu.gpu, workload.pricing) * HOURS_PER_MONTH
                items.append(
                    {
                        "sku": f"gpu:{nu.gpu}:stranded",
                        "description": f"{catalog.gpus[nu.gpu].name}, stranded on partly used nodes "
                        f"({nu.nodes} nodes of {nu.gpus_per_node}), {mode}",
                        "quantity": nu.stranded_gpus,
                        "unit_usd": unit,
                        "extended_usd": unit * nu.stranded_gpus,
                        "period": "month",
                    }
                )
    for lr in ev.links:
        items += _port_items(lr, catalog.links[lr.link], catalog, workload.pricing)
    return items


def node_rows(ev: Evaluation, catalog: Catalog, workload: Workload) -> list[dict[str, Any]]:
    """The nodes of each GPU type the plan occupies, with the replicas each node holds, their NICs, power per node
    and racks (:func:`planner.perf.bom.node_bom`)."""
    budget_w = workload.constraints.rack_power_w
    boms = {b.gpu: b for b in node_bom(ev, catalog, budget_w)}
    rows = []
    for nu in ev.nodes:
        b = boms[nu.gpu]
        rack_kw = b.peak_w_per_rack
        rows.append(
            {
                "gpu": nu.gpu,
                "gpus_per_node": nu.gpus_per_node,
                "nodes": nu.nodes,
                "gpus_used": nu.gpus_used,
                "stranded_gpus": nu.stranded_gpus,
                "packing": [list(node) for node in nu.packing],
                "compute_nics_per_node": b.compute_nics_per_node,
                "compute_nics": b.compute_nics,
                "north_south_nics_per_node": b.north_south_nics_per_node,
                "north_south_nics": b.north_south_nics,
                "nics_source": _nic_source(catalog, nu.gpu),
                "gpu_power_kw_per_node": b.gpu_power_w_per_node / W_PER_KW,
                "peak_kw_per_node": b.peak_w_per_node / W_PER_KW,
                "peak_basis": b.peak_basis,
                "rack_power_kw": None if budget_w is None else budget_w / W_PER_KW,
                "nodes_per_rack": b.nodes_per_rack,
                "racks": b.racks,
                "peak_kw_per_rack": None if rack_kw is None else rack_kw / W_PER_KW,
                "rack_note": b.rack_note,
            }
        )
    return rows


def _nic_source(catalog: Catalog, gpu: str) -> str | None:
    spec = catalog.gpus[gpu]
    if spec.node_compute_nics is None and spec.node_north_south_nics is None:
        return None
    return spec.sources.get("node_compute_nics") or spec.sources.get("node_north_south_nics")


def _port_items(lr: LinkResult, link: LinkSpec, catalog: Catalog, pricing: Pricing) -> list[dict[str, Any]]:
    """The rows of one link's ports: each priced part per GPU port, amortized per month (perf.cost's formula)."""
    years = network_amortization_years(pricing, catalog)
    if years is None or lr.usd_per_hour <= 0:
        return []
    per_month = HOURS_PER_MONTH / (years * HOURS_PER_YEAR)  # capital USD -> USD per month
    ports = lr.total_ports
    bill = port_bill(link, catalog)
    both = f"{lr.ports} prefill + {lr.decode_ports} decode GPU ports"
    if bill.override_usd is not None:
        unit = bill.override_usd * per_month
        return [
            {
                "sku": f"port:{link.id}",
                "description": f"{link.name}, all-in port ({both}), amortized over {years:g} years",
                "quantity": ports,
                "unit_usd": unit,
                "extended_usd": unit * ports,
                "period": "month",
                "source": bill.override_source,
            }
        ]
    items = []
    for part in bill.parts:
        if part.usd_per_unit_port is None:
            continue
        what = {"nic": "NIC port", "switch": "switch port", "cable": "cable"}[part.part]
        per_port = {
            "nic": "one per GPU port",
            "switch": f"{part.quantity} per GPU port (leaf, leaf uplink, spine)",
            "cable": f"{part.quantity} per GPU port (GPU-leaf, leaf-spine)",
        }[part.part]
        quantity = part.quantity * ports
        unit = part.usd_per_unit_port * per_month
        items.append(
            {
                "sku": f"{part.part}:{part.component}",
                "description": f"{part.name}: {what} for {link.id} ({both}; {per_port}), price as of {part.as_of}, "
                f"amortized over {years:g} years",
                "quantity": quantity,
                "unit_usd": unit,
                "extended_usd": unit * quantity,
                "period": "month",
                "source": part.source,
            }
        )
    return items


def port_data(link: LinkSpec, catalog: Catalog, pricing: Pricing) -> dict[str, Any]:
    """One GPU port on ``link``: its parts with their prices and sources, what has no price, the amortization and
    the fabric rule they are counted by, and the transfer curve (measured or the efficiency assumption)."""
    bill = port_bill(link, catalog)
    net = catalog.network
    curve = link.transfer_curve
    return {
        "usd": bill.usd,
        "usd_per_hour": port_usd_per_hour(link, pricing, catalog),
        "all_in_usd": bill.override_usd,
        "parts": [
            {
                "part": p.part,
                "component": p.component,
                "name": p.name,
                "quantity_per_port": p.quantity,
                "usd_per_unit_port": p.usd_per_unit_port,
                "usd_per_port": p.usd,
                "as_of": p.as_of,
                "source": p.source,
                **({"note": p.note} if p.usd is None and p.note else {}),
            }
            for p in bill.parts
        ],
        "missing_parts": list(bill.missing),
        "amortization_years": network_amortization_years(pricing, catalog),
        "amortization_source": (
            "pricing.amortization_years" if pricing.mode == "capex" and pricing.amortization_years else net.amortization_source
        ),
        "switch_ports_per_port": net.switch_ports_per_port,
        "cables_per_port": net.cables_per_port,
        "fabric_source": net.topology_source,
        "transfer": {
            "measured": curve is not None,
            "latency_s": link_transfer_latency_s(link),
            "peak_bytes_per_s": link_effective_bytes_per_s(link, catalog.engine),
            "source": curve.source if curve is not None else catalog.engine.sources.get("net_efficiency_frac"),
        },
    }


def solved_data(s: Solved) -> dict[str, Any]:
    ev = s.evaluation
    return {
        "pools": pool_rows(ev),
        "cost": cost(ev),
        "num_gpus": ev.num_gpus,
        "power_kw": ev.power_w / W_PER_KW,
        "predicted": predicted(ev),
    }


def baseline_data(b: Baseline) -> dict[str, Any]:
    if b.solved is None:
        return {"name": b.name, "feasible": False, "note": b.note, "pools": [], "cost": {"usd_per_hour": None}}
    return {"name": b.name, "feasible": True, "note": b.note, **solved_data(b.solved)}


def size_data(r: SizeResult, catalog: Catalog) -> dict[str, Any]:
    plan = r.plan
    ev = plan.evaluation
    return {
        **solved_data(plan),
        **prefix_cache_data(r, catalog),
        "links": [
            {
                "link": lr.link,
                "prefill_ports": lr.ports,
                "decode_ports": lr.decode_ports,
                "switch_ports": lr.total_ports * catalog.network.switch_ports_per_port,
                "cables": lr.total_ports * catalog.network.cables_per_port,
                "demand_bytes_per_s": lr.demand_bytes_per_s,
                "capacity_bytes_per_s": lr.capacity_bytes_per_s,
                "utilization_frac": lr.utilization_frac,
                "usd_per_hour": lr.usd_per_hour,
                "port": port_data(catalog.links[lr.link], catalog, r.workload.pricing),
            }
            for lr in ev.links
        ],
        "energy_j_per_output_token": ev.energy_j_per_token,
        "output_tokens_per_s": ev.output_tokens_per_s,
        "routing": {k: dict(sorted(v.items())) for k, v in sorted(ev.routing.items())},
        "baselines": [baseline_data(b) for b in r.baselines],
        "savings_frac": r.savings_frac,
        "line_items": line_items(ev, catalog, r.workload),
        "nodes": node_rows(ev, catalog, r.workload),
        "optimality": plan.optimality,
        "mip_gap_frac": plan.gap_frac,
        "solver": {
            "name": plan.solver,
            "variables": plan.num_variables,
            "constraints": plan.num_constraints,
            "candidates": plan.num_candidates,
        },
        "binding_constraints": list(plan.binding),
        "limiting_constraints": [
            {
                "limit": name,
                "usd_per_month_without": usd * HOURS_PER_MONTH,
                "extra_usd_per_month": (ev.usd_per_hour - usd) * HOURS_PER_MONTH,
            }
            for name, usd in r.limiting
        ],
    }


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def simulated_verdicts(verification: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``--verify``'s simulated classes by name (``slo_attainment_frac``, ``meets_slo``); empty without it."""
    if not verification:
        return {}
    return {str(c["name"]): c for c in verification.get("by_class", [])}


def verify_failures(verification: dict[str, Any] | None) -> list[str]:
    """The classes the simulation of ``--verify`` finds missing their SLO (and saturation), one line each."""
    if not verification:
        return []
    lines = [
        f"class {c['name']}: simulated SLO attainment {_attain(c.get('slo_attainment_frac'))} misses its target"
        for c in verification.get("by_class", [])
        if not c.get("meets_slo", True)
    ]
    if verification.get("saturated"):
        lines.append("the simulated plan saturates (its queues grow without bound)")
    return lines


def _attain(frac: float | None) -> str:
    return "-" if frac is None else f"{100 * frac:.1f}%"


def _met(analytic: bool, simulated: dict[str, Any] | None) -> str:
    if not analytic:
        return "NO"
    if simulated is not None and not simulated.get("meets_slo", True):
        return "NO (simulated)"
    return "yes"


def size_table(r: SizeResult, catalog: Catalog, verification: dict[str, Any] | None = None) -> Group:
    """The tables of ``planner size``; with ``verification`` (``--verify``), the SLO table shows each class's
    simulated attainment beside the analytic verdict, and ``met`` is ``yes`` only when both meet the SLO."""
    ev = r.plan.evaluation
    simulated = simulated_verdicts(verification)
    pools = Table(title=f"plan: {r.workload.model} ({r.workload.precision}), {r.plan.optimality} ({r.plan.solver})")
    for col in ("role", "GPU", "TP", "replicas", "GPUs", "max batch", "link / budget", "utilization", "USD/month"):
        pools.add_column(col, justify="right" if col not in ("role", "GPU", "link / budget") else "left")
    for pr in ev.pools:
        p = pr.pool
        bar = "#" * round(10 * pr.utilization_frac)
        extra = p.link or (f"B={p.token_budget}" if p.token_budget else "")
        pools.add_row(
            p.role,
            p.gpu,
            tp_label(p),
            str(p.replicas),
            str(p.num_gpus),
            str(p.max_batch),
            extra,
            f"{_pct(pr.utilization_frac)} {bar:<10}",
            f"{pr.usd_per_hour * HOURS_PER_MONTH:,.0f}",
        )
    slo = Table(title="predicted latency vs SLO (ms)" + (", and simulated SLO attainment" if verification else ""))
    columns = ["class", "TTFT p50", "TTFT @SLO", "target", "TPOT p50", "TPOT @SLO", "target"]
    columns += ["simulated", "met"] if verification else ["met"]
    for col in columns:
        slo.add_column(col, justify="right" if col != "class" else "left")
    for c in ev.classes:
        sim = simulated.get(c.name)
        cells = [
            c.name,
            f"{s_to_ms(c.ttft_p50_s):.1f}",
            f"{s_to_ms(c.ttft_at_slo_s):.1f}",
            f"{s_to_ms(c.ttft_target_s):g} (p{c.ttft_quantile * 100:g})",
            f"{s_to_ms(c.tpot_p50_s):.1f}",
            f"{s_to_ms(c.tpot_at_slo_s):.1f}",
            f"{s_to_ms(c.tpot_target_s):g} (p{c.tpot_quantile * 100:g})",
        ]
        if verification:
            cells.append(_attain(sim.get("slo_attainment_frac")) if sim else "-")
        cells.append(_met(c.meets_slo, sim) if verification else "yes" if c.meets_slo else "NO")
        slo.add_row(*cells)
    totals = Table(title="cost and power")
    totals.add_column("metric")
    totals.add_column("value", justify="right")
    totals.add_row("GPUs", str(ev.num_gpus))
    for nu in ev.nodes:
        stranded = f", {nu.stranded_gpus} GPU{'s' if nu.stranded_gpus > 1 else ''} stranded" if nu.stranded_gpus else ""
        paid = " (paid: pricing.whole_nodes)" if nu.stranded_gpus and r.workload.pricing.whole_nodes else ""
        totals.add_row(f"nodes of {nu.gpu}", f"{nu.nodes} x {nu.gpus_per_node} GPUs{stranded}{paid}")
    for nb in node_bom(ev, catalog, r.workload.constraints.rack_power_w):
        ns = "?" if nb.north_south_nics is None else nb.north_south_nics  # a node whose north-south NICs were not read
        nics = "" if nb.compute_nics is None else f", {nb.compute_nics} + {ns} NICs"
        racks = f"{nb.racks} racks of {nb.nodes_per_rack}" if nb.racks is not None else "racks not computed"
        totals.add_row(
            f"{nb.gpu} node kW (load / peak)",
            f"{nb.gpu_power_w_per_node / W_PER_KW:.2f} / {nb.peak_w_per_node / W_PER_KW:.2f}{nics}; {racks}",
        )
    totals.add_row("USD per hour", f"{ev.usd_per_hour:,.2f}")
    totals.add_row("USD per month", f"{ev.usd_per_month:,.0f}")
    totals.add_row("USD per 1M output tokens", f"{ev.usd_per_mtok:.3f}")
    totals.add_row("power (kW)", f"{ev.power_w / W_PER_KW:.1f}")
    totals.add_row("energy per output token (J)", f"{ev.energy_j_per_token:.2f}")
    for lr in ev.links:
        totals.add_row(
            f"KV link {lr.link}",
            f"{lr.ports} prefill + {lr.decode_ports} decode NIC ports, {_pct(lr.utilization_frac)} of achieved bandwidth, "
            f"{lr.usd_per_hour * HOURS_PER_MONTH:,.0f} USD/month",
        )
    totals.add_row("binding constraints", ", ".join(r.plan.binding) or "none")
    for name, usd in r.limiting:
        totals.add_row(f"limit {name}", f"costs {(ev.usd_per_hour - usd) * HOURS_PER_MONTH:,.0f} USD/month")
    base = Table(title="baselines (same SLOs, same method)")
    for col in ("baseline", "GPUs", "USD/month", "plan vs it"):
        base.add_column(col, justify="left" if col == "baseline" else "right")
    for b in r.baselines:
        if b.solved is None:
            base.add_row(b.name, "-", "infeasible", "-")
            continue
        e = b.solved.evaluation
        delta = 1 - ev.usd_per_hour / e.usd_per_hour
        base.add_row(
            b.name, str(e.num_gpus), f"{e.usd_per_month:,.0f}", f"{'saves' if delta >= 0 else 'costs'} {abs(delta) * 100:.1f}%"
        )
    parts: list[Any] = [pools, slo, totals, base]
    parts += prefix_cache_table(prefix_cache_data(r, catalog))
    if r.savings_frac is not None:
        parts.append(f"savings against the best co-located baseline: {r.savings_frac * 100:.1f}%")
    return Group(*parts)


def _tp_cell(row: dict[str, Any]) -> str:
    """The TP cell of a markdown pool row (its ``moe_ep``, ``attention_dp`` and ``nodes_per_replica`` keys where present)."""
    layout = [f"PP {row['pp']} x TP {row['tp'] // row['pp']}"] if row.get("pp") else []
    layout += [f"EP {row['moe_ep']}"] if row.get("moe_ep") else []
    layout += [f"DP-attn {row['attention_dp']}"] if row.get("attention_dp") else []
    layout += [f"{row['nodes_per_replica']} nodes"] if row.get("nodes_per_replica") else []
    return f"{row['tp']} ({', '.join(layout)})" if layout else str(row["tp"])


def size_markdown(data: dict[str, Any], engine_line: str | None = None) -> str:
    lines = [
        "## planner size",
        "",
        *([engine_line, ""] if engine_line else []),
        "| role | GPU | TP | replicas | GPUs | max batch | utilization | USD/month |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for p in data["pools"]:
        lines.append(
            f"| {p['role']} | {p['gpu']} | {_tp_cell(p)} | {p['replicas']} | {p['num_gpus']} | {p['max_batch']} | "
            f"{100 * p['utilization_frac']:.0f}% | {p['usd_per_hour'] * HOURS_PER_MONTH:,.0f} |"
        )
    pr = data["predicted"]
    lines += [
        "",
        f"Predicted TTFT p50 / at the SLO percentile {pr['ttft_p50_ms']:.1f}/{pr['ttft_at_slo_ms']:.1f} ms, "
        f"TPOT {pr['tpot_p50_ms']:.1f}/{pr['tpot_at_slo_ms']:.1f} ms.",
        f"Cost {data['cost']['usd_per_month']:,.0f} USD/month ({data['cost']['usd_per_mtok']:.3f} USD per 1M output tokens), "
        f"{data['power_kw']:.1f} kW.",
        "",
        "| baseline | GPUs | USD/month |",
        "|---|--:|--:|",
    ]
    for b in data["baselines"]:
        cost_m = f"{b['cost']['usd_per_month']:,.0f}" if b["feasible"] else "infeasible"
        lines.append(f"| {b['name']} | {b.get('num_gpus', '-')} | {cost_m} |")
    if data["savings_frac"] is not None:
        lines += ["", f"Savings against the best co-located baseline: {100 * data['savings_frac']:.1f}%."]
    lines += prefix_cache_markdown(data)
    verification = data.get("verification")
    if verification:
        verdict = "meets" if verification.get("meets_slo") else "MISSES"
        lines += [
            "",
            f"Simulated ({verification['requests']:,} requests): SLO attainment "
            f"{_attain(verification.get('slo_attainment_frac'))}; the plan {verdict} its SLOs in simulation.",
        ]
    if data.get("engines"):
        lines += ["", "| engine | GPUs | USD/month |", "|---|--:|--:|"]
        for e in data["engines"]:
            usd = f"{e['usd_per_month']:,.0f}" if e["feasible"] else "infeasible"
            mark = " (chosen)" if e["chosen"] else ""
            lines.append(f"| {e['engine']['id']}@{e['engine']['version']}{mark} | {e['num_gpus'] or '-'} | {usd} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ prefix cache

_NO_TRANSFER_SAVED = "location prefill: the decode pool keeps no cache, so every prompt token's KV still crosses the link"
_NO_WORKING_SET = (
    "working_set_tokens not given (0): no KV memory is reserved; the cache lives in what the running sequences "
    "leave free, and its hit share is taken as given"
)


def _plan_totals(s: Solved) -> dict[str, Any]:
    ev = s.evaluation
    prefill = [pr.pool for pr in ev.pools if pr.pool.role == "prefill"]
    return {
        "usd_per_hour": ev.usd_per_hour,
        "usd_per_month": ev.usd_per_month,
        "num_gpus": ev.num_gpus,
        "prefill_replicas": sum(p.replicas for p in prefill),
        "prefill_gpus": sum(p.num_gpus for p in prefill),
    }


def prefix_cache_data(r: SizeResult, catalog: Catalog) -> dict[str, Any]:
    """``data.prefix_cache`` (only when a class has a prefix cache): per class its hit share, where the cache lives
    in the plan (pools, KV tokens reserved per replica) and the KV transfer it saves (``SizeResult.prefix_cache``,
    computed by :func:`planner.perf.prefix_cache.prefix_cache_figures`); the plan's cost, GPUs and prefill replicas
    with reuse and without (``SizeResult.no_reuse``)."""
    if not any(c.prefix_cache is not None for c in r.workload.classes):
        return {}
    classes = [
        {
            "name": cc.name,
            "hit_frac": cc.hit_frac,
            "location": cc.location,
            "working_set_tokens": cc.working_set_tokens,
            "cached_tokens_mean": cc.cached_tokens_mean,
            "input_tokens_mean": cc.input_tokens_mean,
            "cache_pools": [
                {
                    "role": cp.role,
                    "gpu": cp.gpu,
                    "tp": cp.tp,
                    "replicas": cp.replicas,
                    "reserved_kv_tokens_per_replica": cp.reserved_kv_tokens_per_replica,
                    "kv_capacity_tokens_per_replica": cp.kv_capacity_tokens_per_replica,
                }
                for cp in cc.pools
            ],
            "kv_transfer_saved_bytes_per_s": cc.kv_transfer_saved_bytes_per_s,
            "kv_transfer_note": (
                "location both: only the missed tokens' KV crosses the link" if cc.location == "both" else _NO_TRANSFER_SAVED
            ),
            "working_set_note": None if cc.working_set_tokens > 0 else _NO_WORKING_SET,
        }
        for cc in r.prefix_cache
    ]
    nr = r.no_reuse
    without: dict[str, Any] = {"feasible": False, "note": "not sized"}
    if nr is not None:
        without = {"feasible": nr.solved is not None, "note": nr.note}
        if nr.solved is not None:
            without.update(_plan_totals(nr.solved))
    return {"prefix_cache": {"classes": classes, "with_reuse": _plan_totals(r.plan), "without_reuse": without}}


def prefix_cache_table(data: dict[str, Any]) -> list[Any]:
    """The terminal's ``prefix cache`` section of ``planner size`` (nothing without ``data.prefix_cache``)."""
    pc = data.get("prefix_cache")
    if not pc:
        return []
    table = Table(title="prefix cache")
    for col in ("class", "hit share", "cache on", "KV tokens reserved per replica", "KV transfer saved"):
        table.add_column(col, justify="left" if col in ("class", "cache on") else "right")
    for c in pc["classes"]:
        where = ", ".join(f"{p['role']} ({p['gpu']} TP{p['tp']})" for p in c["cache_pools"]) or "-"
        saved = c["kv_transfer_saved_bytes_per_s"]
        table.add_row(
            c["name"],
            f"{100 * c['hit_frac']:.1f}%",
            where,
            f"{c['working_set_tokens']:,.0f}" if c["working_set_tokens"] > 0 else "0 (not given)",
            f"{saved / GB:.2f} GB/s" if c["location"] == "both" else "0 (decode keeps no cache)",
        )
    return [table, _reuse_line(pc)]


def _reuse_line(pc: dict[str, Any]) -> str:
    w, wo = pc["with_reuse"], pc["without_reuse"]
    line = f"with reuse: {w['num_gpus']} GPUs, {w['usd_per_month']:,.0f} USD/month, {w['prefill_replicas']} prefill replicas"
    if wo["feasible"]:
        return (
            f"{line}; without reuse: {wo['num_gpus']} GPUs, {wo['usd_per_month']:,.0f} USD/month, "
            f"{wo['prefill_replicas']} prefill replicas"
        )
    return f"{line}; {wo['note']}"


def prefix_cache_markdown(data: dict[str, Any]) -> list[str]:
    """The markdown lines of the prefix cache section (none without ``data.prefix_cache``)."""
    pc = data.get("prefix_cache")
    if not pc:
        return []
    lines = ["", "| class | hit share | location | KV transfer saved (GB/s) |", "|---|--:|---|--:|"]
    for c in pc["classes"]:
        lines.append(
            f"| {c['name']} | {100 * c['hit_frac']:.1f}% | {c['location']} | {c['kv_transfer_saved_bytes_per_s'] / GB:.2f} |"
        )
    return [*lines, "", f"Prefix cache: {_reuse_line(pc)}."]
