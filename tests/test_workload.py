"""The workload document (docs/design.md §2): the design's example loads exactly as written, SLO keys at
any supported percentile, histograms, and errors that name the field path and line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import Run

from planner import api
from planner.domain import Catalog
from planner.errors import InputError
from planner.io.workload import parse_workload, to_domain

# These tests check the core's mechanics on figures worked out under the 2023 Splitwise engine
# profile; they pin it (the default engine's figures are in test_engine_profiles.py and the README).
ENGINE = "splitwise"


@pytest.fixture(scope="session")
def catalog(splitwise_catalog: Catalog) -> Catalog:
    return splitwise_catalog


REPO = Path(__file__).resolve().parent.parent
CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"
DESIGN_MD = Path("/work/shared/docs/design.md")

# Copied verbatim from docs/design.md §2 ("This example must load exactly as written").
DESIGN_WORKLOAD = """\
model: llama-3.1-70b
precision: bf16              # bf16 | fp8
classes:
  - name: chat
    rate_rps: 20             # peak arrival rate, requests per second
    interarrival_cv2: 1.0    # squared coefficient of variation of gaps: 1 = Poisson, > 1 bursty
    input_tokens: {mean: 2000, p50: 1500, p90: 4000, p99: 7000}
    output_tokens: {mean: 300, p50: 250, p90: 600, p99: 1000}
    slo: {ttft_p99_ms: 1000, tpot_p99_ms: 60}
hardware:                    # optional; default: every priced GPU and every link in the catalogs
  prefill_gpus: [h100-sxm]
  decode_gpus: [a100-sxm-80gb, h100-sxm]
  links: [ib-ndr-400, roce-200]
constraints:                 # optional
  max_gpus: {a100-sxm-80gb: 64}
  power_cap_kw: 120
  budget_usd_per_month: 400000
  headroom_frac: 0.2
  redundancy: 1              # spare replicas per pool (N+1)
pricing: {mode: on-demand}   # on-demand | reserved (discount_frac) | capex (amortization_years, usd_per_kwh, pue)
objective: cost              # cost | gpus | power
"""


def load(text: str, catalog: Catalog, origin: str = "test.yaml"):  # type: ignore[no-untyped-def]
    return to_domain(parse_workload(yaml.safe_load(text), origin, text), catalog, origin)


def test_design_block_is_still_the_one_in_design_md() -> None:
    if not DESIGN_MD.is_file():
        pytest.skip("docs/design.md is not at /work/shared")
    assert DESIGN_WORKLOAD in DESIGN_MD.read_text()


def test_design_example_loads_exactly_as_written(catalog: Catalog) -> None:
    spec = parse_workload(yaml.safe_load(DESIGN_WORKLOAD), "design.yaml", DESIGN_WORKLOAD)
    wl = to_domain(spec, catalog, "design.yaml")
    assert wl.model == "llama-3.1-70b"
    assert wl.precision == "bf16"
    (cls,) = wl.classes
    assert cls.name == "chat"
    assert cls.rate_rps == 20
    assert cls.interarrival_cv2 == 1.0
    assert (cls.input_tokens.mean, cls.input_tokens.p50, cls.input_tokens.p90, cls.input_tokens.p99) == (2000, 1500, 4000, 7000)
    assert (cls.output_tokens.mean, cls.output_tokens.p50, cls.output_tokens.p90, cls.output_tokens.p99) == (300, 250, 600, 1000)
    # The quantile grid is mean-matched (within 1%).
    assert sum(cls.input_tokens.grid) / len(cls.input_tokens.grid) == pytest.approx(2000, rel=0.01)
    slo = cls.slo
    assert (slo.ttft_s, slo.ttft_quantile, slo.tpot_s, slo.tpot_quantile) == pytest.approx((1.0, 0.99, 0.06, 0.99))
    assert wl.prefill_gpus == ("h100-sxm",)
    assert wl.decode_gpus == ("a100-sxm-80gb", "h100-sxm")
    assert wl.links == ("ib-ndr-400", "roce-200")
    c = wl.constraints
    assert dict(c.max_gpus) == {"a100-sxm-80gb": 64}
    assert c.power_cap_w == pytest.approx(120_000)
    assert c.budget_usd_per_hour == pytest.approx(400_000 / 730)
    assert c.headroom_frac == 0.2
    assert c.redundancy == 1
    assert wl.pricing.mode == "on-demand"
    assert wl.objective == "cost"
    # Nothing was dropped: the echo holds every key of the document.
    echoed = spec.model_dump(mode="json", exclude_none=True)
    assert set(echoed) == set(yaml.safe_load(DESIGN_WORKLOAD))


def test_design_example_is_infeasible_at_its_budget(tmp_path: Path, run_cli: Run) -> None:
    path = tmp_path / "design.yaml"
    path.write_text(DESIGN_WORKLOAD)
    code, out, err = run_cli("size", str(path), "--format", "json")
    assert code == 3, err
    doc = json.loads(out)
    assert doc["status"] == "infeasible"
    assert doc["data"]["diagnosis"]["limits"]["budget_usd_per_month"]["limit"] == 400000
    assert doc["data"]["diagnosis"]["limits"]["budget_usd_per_month"]["needed"] > 400000
    assert err.startswith("error: ")
    assert "budget_usd_per_month is 400,000" in err
    assert "USD/month needed" in err
    assert "Traceback" not in err


def test_chatbot_example_is_the_design_document_with_budget_500000() -> None:
    design = yaml.safe_load(DESIGN_WORKLOAD)
    chatbot = yaml.safe_load(CHATBOT.read_text())
    assert design["constraints"]["budget_usd_per_month"] == 400_000
    design["constraints"]["budget_usd_per_month"] = 500_000
    assert chatbot == design


def test_ids_are_matched_loosely(catalog: Catalog) -> None:
    text = DESIGN_WORKLOAD.replace("model: llama-3.1-70b", "model: LLAMA_3_1_70B").replace(
        "decode_gpus: [a100-sxm-80gb, h100-sxm]", "decode_gpus: [A100_SXM_80GB, h100.sxm]"
    )
    wl = load(text, catalog)
    assert wl.model == "llama-3.1-70b"
    assert wl.decode_gpus == ("a100-sxm-80gb", "h100-sxm")


@pytest.mark.parametrize(
    ("slo", "expected"),
    [
        ("{ttft_p90_ms: 800, tpot_p99_ms: 60}", (0.8, 0.9, 0.06, 0.99)),
        ("{ttft_p50_ms: 300, tpot_p95_ms: 45}", (0.3, 0.5, 0.045, 0.95)),
        ("{tpot_p99.9_ms: 70, ttft_p99.9_ms: 2000}", (2.0, 0.999, 0.07, 0.999)),
    ],
)
def test_slo_keys_at_other_percentiles(catalog: Catalog, slo: str, expected: tuple[float, ...]) -> None:
    text = DESIGN_WORKLOAD.replace("{ttft_p99_ms: 1000, tpot_p99_ms: 60}", slo)
    (cls,) = load(text, catalog).classes
    assert (cls.slo.ttft_s, cls.slo.ttft_quantile, cls.slo.tpot_s, cls.slo.tpot_quantile) == pytest.approx(expected)


def test_sizing_at_p90_reports_the_p90(run_cli: Run, tmp_path: Path) -> None:
    """A p90 TTFT target is sized and checked at the p90 (the flags form is p99-only)."""
    text = (
        DESIGN_WORKLOAD.replace("{ttft_p99_ms: 1000, tpot_p99_ms: 60}", "{ttft_p90_ms: 700, tpot_p99_ms: 60}")
        .replace("rate_rps: 20 ", "rate_rps: 6 ")
        .replace("budget_usd_per_month: 400000", "budget_usd_per_month: 900000")
    )
    path = tmp_path / "p90.yaml"
    path.write_text(text)
    code, out, err = run_cli("size", str(path), "--format", "json")
    assert code == 0, err
    (c,) = json.loads(out)["data"]["predicted"]["by_class"]
    assert c["ttft_slo_percentile"] == pytest.approx(0.9)
    assert c["ttft_target_ms"] == 700
    assert c["ttft_at_slo_pct_ms"] <= 700 * (1 + 1e-6)
    assert c["meets_slo"] is True


def test_histograms(catalog: Catalog) -> None:
    text = DESIGN_WORKLOAD.replace(
        "input_tokens: {mean: 2000, p50: 1500, p90: 4000, p99: 7000}",
        "input_tokens: {histogram: [[500, 0.2], [1000, 0.3], [2000, 0.3], [4000, 0.2]]}",
    ).replace("output_tokens: {mean: 300, p50: 250, p90: 600, p99: 1000}", "output_tokens: {histogram: [[100, 1], [300, 3]]}")
    (cls,) = load(text, catalog).classes
    # Weighted means: 0.2·500 + 0.3·1000 + 0.3·2000 + 0.2·4000 = 1800; (100 + 3·300)/4 = 250.
    assert cls.input_tokens.mean == pytest.approx(1800, rel=1e-9)
    assert cls.output_tokens.mean == pytest.approx(250, rel=1e-9)
    assert cls.input_tokens.p50 == 1000
    assert cls.input_tokens.p99 == 4000
    assert min(cls.input_tokens.grid) >= 500
    assert max(cls.input_tokens.grid) <= 4000


def test_histogram_needs_weight(catalog: Catalog) -> None:
    text = DESIGN_WORKLOAD.replace(
        "input_tokens: {mean: 2000, p50: 1500, p90: 4000, p99: 7000}", "input_tokens: {histogram: [[500, 0]]}"
    )
    with pytest.raises(InputError, match=r"classes\.0\.input_tokens.*positive weight"):
        load(text, catalog)


@pytest.mark.parametrize(
    ("old", "new", "line", "path"),
    [
        ("rate_rps: 20 ", "rate_rps: 0 ", 5, "classes.0.rate_rps"),
        ("p90: 600, p99: 1000", "p90: 600, p99: -1", 8, "classes.0.output_tokens.p99"),
        ("interarrival_cv2: 1.0 ", "interarrival_cv2: -1 ", 6, "classes.0.interarrival_cv2"),
        ("tpot_p99_ms: 60}", "tpot_p98_ms: 60}", 9, "classes.0.slo"),
        ("headroom_frac: 0.2", "headroom_frac: 1.0", 18, "constraints.headroom_frac"),
        ("redundancy: 1 ", "redundancy: -1 ", 19, "constraints.redundancy"),
        ("  power_cap_kw: 120", "  power_cap_kw: 120\n  power_cap: 3", 17, "constraints.power_cap"),
        ("precision: bf16 ", "precision: fp6 ", 2, "precision"),
        ("objective: cost ", "objective: latency ", 21, "objective"),
        ("{mode: on-demand}", "{mode: reserved}", 20, "pricing"),
    ],
)
def test_errors_name_the_field_and_the_line(tmp_path: Path, old: str, new: str, line: int, path: str) -> None:
    assert old in DESIGN_WORKLOAD
    file = tmp_path / "w.yaml"
    file.write_text(DESIGN_WORKLOAD.replace(old, new, 1))
    with pytest.raises(InputError) as info:
        api.load_workload_spec(file)
    msg = info.value.message
    assert msg.startswith(f"{file}:{line}: {path}"), msg


def test_error_for_flags_names_the_field() -> None:
    with pytest.raises(InputError, match=r"^flags: classes\.0\.input_tokens"):
        api.workload_spec_from_flags(model="llama-3.1-70b", rate_rps=1, isl=-5, osl=10, ttft_p99_ms=1, tpot_p99_ms=1)


def test_duplicate_class_names() -> None:
    doc = yaml.safe_load(DESIGN_WORKLOAD)
    doc["classes"].append(dict(doc["classes"][0]))
    with pytest.raises(InputError, match="repeated: chat"):
        parse_workload(doc, "dup.yaml")


def test_two_ttft_targets_are_rejected() -> None:
    doc = yaml.safe_load(DESIGN_WORKLOAD)
    doc["classes"][0]["slo"]["ttft_p90_ms"] = 500
    with pytest.raises(InputError, match="exactly one ttft"):
        parse_workload(doc, "two.yaml")


@pytest.mark.parametrize("value", [0, -1, ".inf", ".nan", "true", "'fast'"])
def test_slo_values_must_be_positive_finite(value: str) -> None:
    text = DESIGN_WORKLOAD.replace("tpot_p99_ms: 60}", f"tpot_p99_ms: {value}}}")
    with pytest.raises(InputError, match="tpot_p99_ms must be a positive finite number"):
        parse_workload(yaml.safe_load(text), "slo.yaml", text)


def test_not_a_mapping() -> None:
    with pytest.raises(InputError, match="a workload is a YAML mapping"):
        parse_workload(["model"], "list.yaml")


def test_unknown_model_lists_close_matches(catalog: Catalog) -> None:
    with pytest.raises(InputError) as info:
        load(DESIGN_WORKLOAD.replace("model: llama-3.1-70b", "model: llama-3.1-70"), catalog)
    assert "model" in info.value.message
    assert info.value.hint is not None and "llama-3.1-70b" in info.value.hint


def test_budget_is_converted_per_hour(catalog: Catalog) -> None:
    wl = load(DESIGN_WORKLOAD, catalog)
    assert wl.constraints.budget_usd_per_hour is not None
    assert math.isclose(wl.constraints.budget_usd_per_hour * 730, 400_000)
