"""GPUs of today, part two (issue 13 item 3): H20, MI300X, MI325X, MI355X. Every figure is sourced; their factor
sets are transferred from the nearest measured GPU and flagged; TensorRT-LLM claims no factor set for AMD GPUs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import assert_input_error, cli

from planner.errors import CatalogError
from planner.io.catalog import load_catalog, select_engine

NEW = ("h20", "mi300x", "mi325x", "mi355x")
AMD = ("mi300x", "mi325x", "mi355x")
DONORS = {"h20": "h100-sxm", "mi300x": "h200-sxm", "mi325x": "h200-sxm", "mi355x": "b200"}  # vllm and sglang

WORKLOAD = """\
model: llama-3.1-8b
classes:
  - name: chat
    rate_rps: 10
    input_tokens: {mean: 1000, p50: 900, p90: 2000, p99: 4000}
    output_tokens: {mean: 200, p50: 180, p90: 400, p99: 800}
    slo: {ttft_p99_ms: 2000, tpot_p99_ms: 60}
hardware: {prefill_gpus: [mi300x], decode_gpus: [mi300x]}
"""

# No price of these GPUs was read from a provider's own page, so the catalog has none; a test supplies one in an
# overlay (a price the test gives, not a catalog figure) to size a plan on the MI300X end to end.
PRICE_OVERLAY = {
    "prices.yaml": """\
schema_version: 1
gpu_prices:
  - gpu: mi300x
    provider: "Test"
    region: "test"
    usd_per_gpu_hour: 2.0
    as_of: "2026-12-04"
    source: test-price
    default: true
""",
    "sources.yaml": """\
schema_version: 1
sources:
  test-price:
    title: "a price the test gives (not a list price)"
    as_of: "2026-12-04"
""",
}


def _overlay(tmp_path: Path, files: dict[str, str]) -> str:
    d = tmp_path / "overlay"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return str(d)


def _workload(tmp_path: Path) -> str:
    path = tmp_path / "w.yaml"
    path.write_text(WORKLOAD)
    return str(path)


def test_catalog_validates_and_shows_every_new_gpu() -> None:
    code, _, err = cli("catalog", "validate")
    assert code == 0, err
    for gpu in NEW:
        code, out, err = cli("catalog", "show", gpu, "-f", "json")
        assert code == 0, (gpu, err)
        assert gpu in out


@pytest.mark.parametrize(
    ("gpu", "bf16", "fp8", "fp4", "hbm_gib", "tb_s", "tdp"),
    [
        ("h20", 148, 296, None, 96, 4.0, 400),
        ("mi300x", 1307.4, 2614.9, None, 192, 5.3, 750),  # AMD ROCm MI300X table
        ("mi325x", 1307.4, 2614.9, None, 256, 6.0, 1000),
        ("mi355x", 2500, 5000, 10050, 288, 8.0, 1400),  # FP4: 20.1 PF sparse / 2 (gpus.yaml note)
    ],
)
def test_specs_as_the_sources_give_them(
    gpu: str, bf16: float, fp8: float, fp4: float | None, hbm_gib: float, tb_s: float, tdp: float
) -> None:
    g = load_catalog(()).gpus[gpu]
    assert g.peak_flop_per_s("bf16") == pytest.approx(bf16 * 1e12)
    assert g.peak_flop_per_s("fp8") == pytest.approx(fp8 * 1e12)
    assert (g.peak_flop_per_s("fp4") is None) == (fp4 is None)  # FP4 only on CDNA 4 (MXFP4); none on Hopper, CDNA 3
    if fp4 is not None:
        assert g.peak_flop_per_s("fp4") == pytest.approx(fp4 * 1e12)
    assert g.hbm_capacity_bytes == pytest.approx(hbm_gib * 2**30)
    assert g.hbm_bandwidth_bytes_per_s == pytest.approx(tb_s * 1e12)
    assert g.tdp_w == tdp and g.gpus_per_node == 8
    # scale-up per GPU per direction: NVLink 4 halved; Infinity Fabric 7 links x 64 (CDNA 3) or 76.5 (CDNA 4) GB/s
    assert g.nvlink_bytes_per_s == pytest.approx({"h20": 450, "mi355x": 535.5}.get(gpu, 448) * 1e9)


def test_every_new_figure_names_a_source_in_sources_yaml() -> None:
    cat = load_catalog(())
    for gpu in NEW:
        g = cat.gpus[gpu]
        assert g.sources and all(s in cat.sources for s in g.sources.values()), (gpu, g.sources)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "pytorch", "splitwise"])
def test_factor_sets_are_transferred_and_say_so(engine: str) -> None:
    cat = select_engine(load_catalog(()), engine)
    for gpu in NEW:
        eff = cat.efficiency[gpu]
        assert eff.transferred_from is not None, (engine, gpu)
        if engine in ("vllm", "sglang"):
            assert eff.transferred_from == DONORS[gpu]


def test_tensorrt_llm_claims_no_factor_set_for_amd_gpus() -> None:
    cat = select_engine(load_catalog(()), "trtllm")
    assert cat.efficiency["h20"].transferred_from == "h100-sxm"  # an NVIDIA GPU: TensorRT-LLM runs on it
    for gpu in AMD:
        assert gpu not in cat.efficiency
        assert "NVIDIA GPUs only" in cat.engine.unsupported_gpus[gpu]
    assert not select_engine(load_catalog(()), "vllm").engine.unsupported_gpus
    code, out, err = cli("catalog", "show", "trtllm", "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert sorted(data["entry"]["unsupported_gpus"]) == list(AMD)
    assert data["sources"]["unsupported_gpus"]["id"] == "trtllm-supported-hardware"
    assert not set(AMD) & set(data["efficiency"])


def test_estimate_under_trtllm_on_an_amd_gpu_is_one_error_line() -> None:
    args = ("estimate", "decode", "-m", "llama-3.1-8b", "-g", "mi300x", "--tp", "1", "--batch", "8", "--context", "1000")
    assert_input_error(cli(*args, "--engine", "trtllm"), "engine trtllm does not run on mi300x", "vLLM or SGLang")
    code, out, err = cli(*args, "--engine", "sglang", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["data"]["latency_ms"] > 0
    assert any("mi300x" in w and "h200-sxm" in w for w in doc["warnings"])  # the borrowed set is flagged


def test_an_overlay_cannot_give_trtllm_a_factor_set_for_an_amd_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "ov"
    (d / "efficiency").mkdir(parents=True)
    (d / "efficiency" / "trtllm.yaml").write_text(
        "schema_version: 1\nengine: trtllm\nefficiency:\n  mi300x:\n    transferred_from: h200-sxm\n    note: a test\n"
    )
    with pytest.raises(CatalogError, match="does not run on"):
        load_catalog([d])


def test_an_overlay_without_an_engine_gives_its_amd_entries_to_the_engines_that_run_on_them(tmp_path: Path) -> None:
    d = tmp_path / "ov"
    d.mkdir()
    (d / "efficiency.yaml").write_text(  # no engine: it applies to every engine (calibrate fit --write writes these)
        "schema_version: 1\nefficiency:\n  mi300x:\n    transferred_from: h100-sxm\n    note: a test\n"
    )
    cat = load_catalog([d])
    assert cat.engine_efficiency["vllm"]["mi300x"].transferred_from == "h100-sxm"
    assert "mi300x" not in cat.engine_efficiency["trtllm"]


def test_size_restricted_to_mi300x_plans_end_to_end_and_flags_the_transferred_factors(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WORKLOAD + "pricing: {provider: digitalocean}\n")  # its MI300X row (prices.yaml, not a default)
    code, out, err = cli("size", str(path), "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    pools = doc["data"]["pools"]
    assert pools and {p["gpu"] for p in pools} == {"mi300x"}
    assert {p["role"] for p in pools} == {"prefill", "decode"}
    assert all(p["gpu_usd_per_hour"] == 2.59 for p in pools)  # tokenwatt-gpu-cloud-prices-2026-10
    flagged = [w for w in doc["warnings"] if "mi300x" in w and "transferred from h200-sxm" in w]
    assert flagged, doc["warnings"]
    nodes = {n["gpu"]: n for n in doc["data"]["nodes"]}
    assert nodes["mi300x"]["compute_nics_per_node"] == 8 and nodes["mi300x"]["north_south_nics_per_node"] is None
    html = tmp_path / "plan.html"
    code, out, err = cli("size", str(path), "--html", str(html))
    assert code == 0, err
    assert "transferred from h200-sxm" in html.read_text()  # the HTML report flags it too
    assert "8 + ? NICs" in out  # the terminal does not print an unread north-south NIC count as 0


@pytest.mark.parametrize("gpu", ["mi300x", "mi325x", "mi355x", "h20"])
def test_size_on_a_gpu_without_a_price_exits_2_with_one_error_line(tmp_path: Path, gpu: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(WORKLOAD.replace("mi300x", gpu))  # mi300x: a DigitalOcean row but no default one
    assert_input_error(cli("size", str(path)), f"{gpu} has no list price")


def test_size_under_trtllm_naming_an_amd_gpu_is_an_input_error_and_auto_skips_trtllm(tmp_path: Path) -> None:
    overlay = _overlay(tmp_path, PRICE_OVERLAY)
    assert_input_error(
        cli("size", _workload(tmp_path), "--catalog-dir", overlay, "--engine", "trtllm"),
        "hardware.prefill_gpus",
        "engine trtllm does not run on mi300x",
    )
    code, out, err = cli("size", _workload(tmp_path), "--catalog-dir", overlay, "--engine", "auto", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    engines = doc["inputs"]["engines"]
    assert engines and not any(e.startswith("trtllm") for e in engines)
    assert any(w.startswith("engine trtllm@") and "skipped: it does not run on mi300x" in w for w in doc["warnings"])


def test_default_hardware_under_trtllm_leaves_amd_gpus_out(tmp_path: Path) -> None:
    from planner.io.workload import parse_workload, to_domain

    cat = select_engine(load_catalog([Path(_overlay(tmp_path, PRICE_OVERLAY))]), "trtllm")
    spec = parse_workload(yaml.safe_load(WORKLOAD.split("hardware:")[0]), "w.yaml")
    workload = to_domain(spec, cat)
    assert "mi300x" not in workload.prefill_gpus and "h100-sxm" in workload.prefill_gpus
    vllm = select_engine(load_catalog([Path(_overlay(tmp_path, PRICE_OVERLAY))]), "vllm")
    assert "mi300x" in to_domain(spec, vllm).prefill_gpus  # priced by the overlay, and vLLM runs on it
