"""A priced network (issue 15, item 3): KV ports priced from their parts with sources, the link chosen for
its price, and KV transfers timed by a size-dependent curve fitted on published measurements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_input_error, cli

from planner.calibrate.netfit import fit_transfer_curve
from planner.domain import Catalog, Pricing
from planner.errors import InputError
from planner.perf import cost
from planner.perf.memory import kv_bytes_per_token
from planner.perf.transfer import achieved_bytes_per_s, kv_transfer_s, link_effective_bytes_per_s, transfer_s

# Llama-3.1-70B on H100s, two links that both meet the SLOs with the same pools: the choice is the ports' price.
FLAGS = [
    *("--model", "llama-3.1-70b", "--rate-rps", "4", "--isl", "2000", "--osl", "200"),
    *("--ttft-p99-ms", "2000", "--tpot-p99-ms", "80", "--prefill-gpus", "h100-sxm", "--decode-gpus", "h100-sxm"),
    *("--links", "ib-ndr-400,roce-400"),
]
SOURCES = 'schema_version: 1\nsources:\n  my-quote:\n    title: "a test quote"\n    as_of: "2026-12-01"\n'


def overlay(tmp_path: Path, name: str, components: dict[str, dict[str, Any]]) -> Path:
    """A catalog directory replacing ``components`` (each priced from the quote ``my-quote``)."""
    d = tmp_path / name
    d.mkdir()
    (d / "sources.yaml").write_text(SOURCES)
    lines = ["schema_version: 1", "components:"]
    for cid, c in components.items():
        lines.append(f"  {cid}:")
        lines += [f"    {k}: {json.dumps(v)}" for k, v in {"as_of": "2026-12-01", "source": "my-quote", **c}.items()]
    (d / "links.yaml").write_text("\n".join(lines) + "\n")
    return d


def size_json(*args: str) -> dict[str, Any]:
    code, out, err = cli("size", *FLAGS, "-f", "json", *args)
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def chosen_link(doc: dict[str, Any]) -> str:
    (link,) = doc["data"]["links"]
    return str(link["link"])


# --------------------------------------------------------------------------------------------- port prices


def pricing(mode: str) -> Pricing:
    return Pricing(mode=mode, discount_frac=0.35 if mode == "reserved" else 0.0)  # type: ignore[arg-type]


def test_a_port_is_its_nic_three_switch_ports_and_two_cables(catalog: Catalog) -> None:
    """ib-ndr-400: ConnectX-7 400G ($2,188, FS.com) + 3 of a 64-port QM9700-class switch's ports ($36,000 / 64)
    and two cables, which have no public price: $3,875.50 per GPU port, over six years."""
    bill = cost.port_bill(catalog.links["ib-ndr-400"], catalog)
    assert {p.part: p.quantity for p in bill.parts} == {"nic": 1, "switch": 3, "cable": 2}
    assert bill.usd == pytest.approx(2188 + 3 * 36000 / 64, rel=1e-12)
    assert bill.missing == ("cable",)
    assert {p.part: p.source for p in bill.parts} == {
        "nic": "fs-com-nvidia-nics-2026-09",
        "switch": "h100-cluster-cost-spreadsheet-2024-08",
        "cable": "planner-unpriced-network-parts",
    }
    for mode in ("on-demand", "reserved"):
        assert cost.port_usd_per_hour(catalog.links["ib-ndr-400"], pricing(mode), catalog) == pytest.approx(
            3875.5 / (6 * 8760), rel=1e-12
        )
    # A dual-port adapter serves two GPUs: each port carries half its price.
    eth = cost.port_bill(catalog.links["ethernet-25"], catalog)
    assert eth.usd == pytest.approx(469 / 2, rel=1e-12) and eth.missing == ("switch", "cable")


def test_every_priced_part_has_a_source_and_a_date_and_every_unpriced_one_says_why(catalog: Catalog) -> None:
    assert catalog.network_components
    for c in catalog.network_components.values():
        assert c.source in catalog.sources, c.id
        if c.usd is None:
            assert c.note and ("overlay" in c.note or "No public" in c.note), c.id
        else:
            assert c.as_of and c.usd > 0, c.id
    assert catalog.network.amortization_source in catalog.sources
    assert catalog.network.topology_source in catalog.sources
    for link in catalog.links.values():
        if link.scope == "inter_node":
            assert link.port is not None, link.id  # every KV link names the parts its ports are priced from


# ------------------------------------------------------------------------------------------ the link choice


def test_the_link_choice_follows_the_port_price(tmp_path: Path) -> None:
    """Without a public 400GbE switch price, roce-400's ports are the cheaper (NIC only); priced at $10,000 per
    switch port the plan moves to InfiniBand; with InfiniBand switch ports dear and Ethernet ones cheap it moves
    back. The pools stay the same: only the ports' price moved the choice."""
    base = size_json()
    assert chosen_link(base) == "roce-400"
    dear_ethernet = overlay(
        tmp_path, "dear", {"ethernet-switch-400g": {"name": "400GbE switch", "part": "switch", "usd": 640000, "ports": 64}}
    )
    moved = size_json("--catalog-dir", str(dear_ethernet))
    assert chosen_link(moved) == "ib-ndr-400"
    dear_ib = overlay(
        tmp_path,
        "dear-ib",
        {
            "quantum2-qm9700-64x400g": {"name": "NDR switch", "part": "switch", "usd": 640000, "ports": 64},
            "ethernet-switch-400g": {"name": "400GbE switch", "part": "switch", "usd": 20000, "ports": 64},
        },
    )
    back = size_json("--catalog-dir", str(dear_ib))
    assert chosen_link(back) == "roce-400"

    def pools(doc: dict[str, Any]) -> list[tuple[str, str, int]]:
        # GPUs per role and type: an equal-cost TP split (1x TP4 or 2x TP2) is a tie the solver may break either way
        return sorted((p["role"], p["gpu"], p["tp"] * p["replicas"]) for p in doc["data"]["pools"])

    assert pools(base) == pools(moved) == pools(back)
    # The moved plan pays its own ports: InfiniBand's, not the dear Ethernet ones it avoided.
    (lk,) = moved["data"]["links"]
    ports = lk["prefill_ports"] + lk["decode_ports"]
    assert lk["usd_per_hour"] == pytest.approx(ports * (2188 + 3 * 36000 / 64) / (6 * 8760), rel=1e-9)


def test_port_line_items_carry_nic_switch_and_cable_with_their_sources(tmp_path: Path) -> None:
    """With every part of the chosen link priced, its ports appear as three line items (NIC ports, switch ports,
    cables), each with its quantity, its price's source, and together the link's cost."""
    quote = overlay(
        tmp_path,
        "all-priced",
        {
            "ethernet-switch-400g": {"name": "400GbE switch", "part": "switch", "usd": 16000, "ports": 64},
            "osfp-400g-optics": {"name": "400G optics, both ends", "part": "cable", "usd": 1500, "ports": 1},
        },
    )
    doc = size_json("--catalog-dir", str(quote))
    data = doc["data"]
    (lk,) = data["links"]
    assert lk["link"] == "roce-400" and lk["port"]["missing_parts"] == []
    ports = lk["prefill_ports"] + lk["decode_ports"]
    assert lk["switch_ports"] == 3 * ports and lk["cables"] == 2 * ports
    items = {i["sku"]: i for i in data["line_items"] if not i["sku"].startswith("gpu:")}
    assert set(items) == {"nic:connectx7-400g-osfp", "switch:ethernet-switch-400g", "cable:osfp-400g-optics"}
    assert items["nic:connectx7-400g-osfp"]["source"] == "fs-com-nvidia-nics-2026-09"
    assert items["switch:ethernet-switch-400g"]["source"] == items["cable:osfp-400g-optics"]["source"] == "my-quote"
    assert [items[s]["quantity"] for s in sorted(items)] == [2 * ports, ports, 3 * ports]  # cable, nic, switch
    per_month = 730 / (6 * 8760)  # capital USD -> USD per month over six years
    assert items["switch:ethernet-switch-400g"]["unit_usd"] == pytest.approx(250 * per_month, rel=1e-12)
    assert items["cable:osfp-400g-optics"]["unit_usd"] == pytest.approx(1500 * per_month, rel=1e-12)
    assert sum(i["extended_usd"] for i in items.values()) == pytest.approx(lk["usd_per_hour"] * 730, rel=1e-9)
    assert sum(i["extended_usd"] for i in data["line_items"]) == pytest.approx(data["cost"]["usd_per_month"], rel=1e-9)
    assert not any("priced without" in w for w in doc["warnings"])


def test_a_plan_on_a_link_with_unpriced_parts_says_so(catalog: Catalog) -> None:
    doc = size_json()
    (lk,) = doc["data"]["links"]
    assert lk["port"]["missing_parts"] == ["switch", "cable"]
    assert any("roce-400 (switch, cable)" in w for w in doc["warnings"])
    skus = [i["sku"] for i in doc["data"]["line_items"]]
    assert "nic:connectx7-400g-osfp" in skus and not any(s.startswith(("switch:", "cable:")) for s in skus)


# ------------------------------------------------------------------------------------------ transfer curve


def test_the_roce_curve_reproduces_its_fitted_points_within_its_stated_error(catalog: Catalog) -> None:
    """Mooncake's vLLM v1 measurements (8 ports of 200 Gb/s): every point within 7.1 %, and the catalog's
    parameters are what the fit gives (380 us, 73.05 % of line rate)."""
    link = catalog.links["roce-200"]
    curve = link.transfer_curve
    assert curve is not None and curve.source == "mooncake-vllm-v1-transfer-benchmark" and len(curve.points) == 9
    errors = [abs(transfer_s(link, catalog.engine, p.message_bytes) - p.time_s) / p.time_s for p in curve.points]
    assert max(errors) <= curve.max_rel_error_frac == 0.071
    assert max(errors) > 0.06  # the stated error is the fit's, not a loose bound
    fit = fit_transfer_curve([p.message_bytes for p in curve.points], [p.time_s for p in curve.points])
    assert fit.latency_s == pytest.approx(curve.latency_s, abs=0.5e-6)
    assert fit.peak_bytes_per_s / curve.measured_line_rate_bytes_per_s == pytest.approx(curve.peak_frac, abs=1e-4)
    assert fit.max_rel_error_frac == pytest.approx(0.0701, abs=1e-4)
    # The two figures the issue cites: 36.5 GB/s at 20 MB and 142 GB/s at 4.5 GB over the host's 8 ports.
    gib = 2**30
    small, large = curve.points[0], curve.points[-1]
    assert 8 * achieved_bytes_per_s(link, catalog.engine, small.message_bytes) / gib == pytest.approx(36.5, rel=0.04)
    assert 8 * achieved_bytes_per_s(link, catalog.engine, large.message_bytes) / gib == pytest.approx(142.25, rel=0.06)


def test_a_large_transfer_is_faster_per_byte_than_a_small_one(catalog: Catalog) -> None:
    link = catalog.links["roce-200"]
    sizes = [1e5, 1e6, 1e7, 1e8, 1e9, 1e10]
    rates = [achieved_bytes_per_s(link, catalog.engine, s) for s in sizes]
    assert rates == sorted(rates) and rates[0] < 0.02 * rates[-1]
    assert rates[-1] < link_effective_bytes_per_s(link, catalog.engine) == pytest.approx(0.7305 * 25e9)
    # By hand: 20 MiB over one port takes 380 us + 20 MiB / (0.7305 x 25 GB/s) = 1.528 ms.
    assert transfer_s(link, catalog.engine, 20 * 2**20) == pytest.approx(380e-6 + 20 * 2**20 / (0.7305 * 25e9), rel=1e-12)


def test_kv_transfer_uses_the_curve_at_the_per_gpu_kv_size(catalog: Catalog) -> None:
    """Llama-3.1-70B bf16 (327,680 B per token), 1,000 tokens at TP 2 over roce-200: each GPU sends 163.84 MB,
    8.97 ms of wire time at 73.05 % of 25 GB/s; with no prefill to hide behind it, all of it plus 380 us."""
    model, link = catalog.models["llama-3.1-70b"], catalog.links["roce-200"]
    assert kv_bytes_per_token(model, "bf16") == 327_680
    wire = 1000 * 327_680 / 2 / (0.7305 * 25e9)
    exposed = kv_transfer_s(model, link, catalog.engine, precision="bf16", prompt_tokens=1000, tp=2)
    assert exposed == pytest.approx(wire + 380e-6, rel=1e-12)
    # Sent layer by layer during a 1 s prefill: one layer's share of the wire time, plus the fixed latency.
    hidden = kv_transfer_s(model, link, catalog.engine, precision="bf16", prompt_tokens=1000, tp=2, prefill_s=1.0)
    assert hidden == pytest.approx(wire / model.num_layers + 380e-6, rel=1e-12)


def test_kinds_without_a_measurement_keep_the_efficiency_assumption(catalog: Catalog) -> None:
    """InfiniBand, Ethernet, NVLink and PCIe have no measured curve: line rate x net_efficiency_frac and the
    adapter's latency claim, as before."""
    assert sorted({lk.kind for lk in catalog.links.values() if lk.transfer_curve is not None}) == ["roce"]
    for link_id in ("ib-ndr-400", "ib-hdr-200", "ethernet-25"):
        link = catalog.links[link_id]
        assert link.transfer_curve is None
        eff = catalog.engine.net_efficiency_frac[link.kind]
        assert link_effective_bytes_per_s(link, catalog.engine) == pytest.approx(eff * link.bandwidth_bytes_per_s)
        assert transfer_s(link, catalog.engine, 1e9) == pytest.approx(
            (link.latency_s or 0.0) + 1e9 / (eff * link.bandwidth_bytes_per_s)
        )


def test_the_fit_recovers_known_parameters_and_refuses_data_without_a_bandwidth() -> None:
    sizes = [1e6, 1e7, 1e8, 1e9]
    fit = fit_transfer_curve(sizes, [2e-4 + s / 10e9 for s in sizes])
    assert fit.latency_s == pytest.approx(2e-4, rel=1e-9) and fit.peak_bytes_per_s == pytest.approx(10e9, rel=1e-9)
    assert fit.max_rel_error_frac < 1e-9
    with pytest.raises(InputError, match="do not grow"):
        fit_transfer_curve(sizes, [4e-3, 3e-3, 2e-3, 1e-3])
    with pytest.raises(InputError, match="two measurements"):
        fit_transfer_curve([1e6, 1e6], [1e-3, 1e-3])


# ---------------------------------------------------------------------------------------- catalog checks


def _catalog_error(tmp_path: Path, name: str, links_yaml: str, *needles: str) -> None:
    d = tmp_path / name
    d.mkdir()
    (d / "sources.yaml").write_text(SOURCES)
    (d / "links.yaml").write_text("schema_version: 1\n" + links_yaml)
    assert_input_error(cli("catalog", "validate", "--catalog-dir", str(d)), *needles)


def test_a_curve_that_misses_its_points_is_a_catalog_error(tmp_path: Path) -> None:
    _catalog_error(
        tmp_path,
        "curve",
        "transfer_curves:\n  roce:\n    source: my-quote\n    latency_us: 0\n    peak_frac: 0.9\n"
        "    measured_port_gbit_per_s: 200\n    max_rel_error_frac: 0.05\n"
        "    points:\n      - {total_bytes: 1000000, transfer_ms: 0.5}\n      - {total_bytes: 100000000, transfer_ms: 5}\n",
        "transfer_curves.roce",
        "points[0]",
    )


def test_an_unpriced_component_needs_a_note_and_a_port_names_parts_of_its_kind(tmp_path: Path) -> None:
    _catalog_error(
        tmp_path, "note", "components:\n  x:\n    name: x\n    part: nic\n    usd: null\n    source: my-quote\n", "needs a note"
    )
    _catalog_error(
        tmp_path,
        "part",
        "links:\n  ib-ndr-400:\n    name: n\n    kind: infiniband\n    scope: inter_node\n    source: my-quote\n"
        "    bandwidth_gbit_per_s: 400\n    port: {nic: quantum2-qm9700-64x400g}\n",
        "is a switch, not a nic",
    )
