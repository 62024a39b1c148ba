"""``planner study robust``: draws of the engine's measured spread and of the forecast, per-draw evaluation or
re-sizing of the chatbot plan, the headroom search, determinism and the bad-input contract."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Run, assert_input_error

from planner import api
from planner.api.study import _perturbed, draw_points, evaluate_point, scaled_rates, study_robust
from planner.domain import Catalog, Workload
from planner.optimize.sizing import size
from planner.perf.evaluate import evaluate

CHATBOT = REPO / "examples" / "workloads" / "chatbot.yaml"


@pytest.fixture(scope="module")
def chatbot(catalog: Catalog) -> tuple[Workload, Catalog]:
    spec = api.load_workload_spec(CHATBOT)
    cat = api.workload_catalog(spec, CHATBOT)
    return api.resolve_workload(spec, cat, str(CHATBOT)), cat


def _study(chatbot: tuple[Workload, Catalog], **kw: Any) -> dict[str, Any]:
    workload, cat = chatbot
    kw.setdefault("jobs", 1)
    data, _ = study_robust(workload, cat, **kw)
    return data


def test_the_built_in_engines_carry_a_measured_spread(catalog: Catalog) -> None:
    for engine in ("vllm", "sglang", "trtllm"):
        u = catalog.engine_uncertainty[engine]
        assert 0 < u.tpot_log_sigma < u.ttft_log_sigma < 1, (engine, u)
        assert u.fitted_on.startswith("training split: catalogs/measurements/aiconfigurator/silicon_sample_dense.csv")
        assert "Llama-3.1-70B" not in u.fitted_on  # the held-out model never sets it
        assert u.source == "aiconfigurator-core-0-12-0" and u.as_of == "2026-09"
        assert "h100-sxm" in u.gpus
    assert "pytorch" not in catalog.engine_uncertainty  # no serving rows: no figure invented
    assert catalog.engine_uncertainty["vllm"].held_out_rows > 0


def test_a_unit_multiplier_leaves_every_step_as_it_was_and_others_scale_it(chatbot: tuple[Workload, Catalog]) -> None:
    workload, cat = chatbot
    plan = size(workload, cat, baselines=False).plan
    same = evaluate(workload, plan.deployment, replace_scale(cat, 1.0, 1.0))
    assert same == plan.evaluation
    slow = evaluate(workload, plan.deployment, replace_scale(cat, 1.0, 1.5))
    for a, b in zip(plan.evaluation.classes, slow.classes, strict=True):
        assert b.tpot_p50_s > a.tpot_p50_s * 1.3  # TPOT follows the decode multiplier (and the occupancy it raises)
        assert b.ttft_p50_s > a.ttft_p50_s  # the first decode step is in TTFT
    pre = evaluate(workload, plan.deployment, replace_scale(cat, 2.0, 1.0))
    for a, b in zip(plan.evaluation.classes, pre.classes, strict=True):
        assert b.tpot_p50_s == a.tpot_p50_s
        assert b.ttft_p50_s > 1.8 * a.ttft_p50_s


def replace_scale(cat: Catalog, p: float, d: float) -> Catalog:
    return replace(cat, time_scale=(p, d))


def test_no_uncertainty_every_draw_is_the_nominal_plan(chatbot: tuple[Workload, Catalog]) -> None:
    workload, cat = chatbot
    data = _study(chatbot, draws=5, factor_sigma_scale=0.0, rate_error_frac=0.0)
    nominal = size(workload, cat, baselines=False).plan.evaluation
    want_ttft = nominal.classes[0].ttft_at_slo_s * 1e3
    assert data["nominal"]["attainment"]["overall_frac"] == 1.0
    for row in data["rows"]:
        assert row["prefill_time_x"] == row["decode_time_x"] == row["rate_x:chat"] == 1.0
        assert row["meets_slos"] is True
        assert row["ttft_at_slo_ms:chat"] == want_ttft
    assert data["headroom"]["rate"]["multiplier"] == 1.0
    assert data["headroom"]["rate"]["extra_usd_per_month"] == 0.0


def test_a_plan_at_an_infeasible_point_attains_nothing(chatbot: tuple[Workload, Catalog]) -> None:
    workload, cat = chatbot
    plan = size(workload, cat, baselines=False).plan
    assert evaluate_point(workload, plan.deployment, cat)["meets_slos"] is True
    over = evaluate_point(scaled_rates(workload, 3.0), plan.deployment, cat)
    assert over["meets_slos"] is False and over["classes"][0]["saturated"] is True


def test_attainment_falls_as_the_rate_error_grows(chatbot: tuple[Workload, Catalog]) -> None:
    fracs = [
        _study(chatbot, draws=30, factor_sigma_scale=0.0, rate_error_frac=f, confidence=None)["nominal"]["attainment"][
            "overall_frac"
        ]
        for f in (0.0, 0.1, 0.3, 0.6)
    ]
    assert fracs[0] == 1.0
    assert all(b <= a for a, b in itertools.pairwise(fracs)), fracs
    assert fracs[-1] < fracs[0], fracs


def test_factor_uncertainty_alone_moves_the_latencies(chatbot: tuple[Workload, Catalog]) -> None:
    data = _study(chatbot, draws=20, rate_error_frac=0.0, confidence=None)
    tpot = data["nominal"]["latency"]["chat"]["tpot_at_slo_ms"]
    assert tpot["p5"] < tpot["p50"] < tpot["p95"]
    xs = [r["decode_time_x"] for r in data["rows"]]
    assert min(xs) < 1 < max(xs)
    assert all(r["rate_x:chat"] == 1.0 for r in data["rows"])


def test_draws_are_seeded_and_the_classes_correlated_as_asked() -> None:
    a = draw_points(50, ["x", "y"], None, rate_error_frac=0.2, rate_correlation=1.0, factor_sigma_scale=1.0, seed=3)
    b = draw_points(50, ["x", "y"], None, rate_error_frac=0.2, rate_correlation=1.0, factor_sigma_scale=1.0, seed=3)
    c = draw_points(50, ["x", "y"], None, rate_error_frac=0.2, rate_correlation=0.0, factor_sigma_scale=1.0, seed=3)
    assert a == b
    assert all(p["rate_x"]["x"] == p["rate_x"]["y"] for p in a)
    assert any(p["rate_x"]["x"] != p["rate_x"]["y"] for p in c)
    d = draw_points(50, ["x", "y"], None, rate_error_frac=0.2, rate_correlation=1.0, factor_sigma_scale=1.0, seed=4)
    assert a != d
    many = draw_points(4000, ["x"], None, rate_error_frac=0.2, rate_correlation=1.0, factor_sigma_scale=0, seed=1)
    logs = [math.log(p["rate_x"]["x"]) for p in many]
    mean = sum(logs) / len(logs)
    sd = math.sqrt(sum((v - mean) ** 2 for v in logs) / len(logs))
    assert abs(mean) < 0.02 and abs(sd - 0.2) < 0.01


def test_headroom_holds_at_its_confidence_on_the_same_draws(chatbot: tuple[Workload, Catalog]) -> None:
    workload, cat = chatbot
    kw = {"draws": 30, "factor_sigma_scale": 0.0, "rate_error_frac": 0.3, "confidence": 0.99, "seed": 7}
    data = _study(chatbot, **kw)
    hr = data["headroom"]["rate"]
    assert data["nominal"]["attainment"]["overall_frac"] < 0.99  # the nominal plan does not hold: a search happened
    h = hr["multiplier"]
    assert h is not None and h > 1.0
    plan = size(scaled_rates(workload, h), cat, baselines=False).plan
    points = draw_points(30, ["chat"], None, rate_error_frac=0.3, rate_correlation=1.0, factor_sigma_scale=0.0, seed=7)
    held = 0
    for p in points:
        wl, c = _perturbed(workload, cat, p)
        held += evaluate_point(wl, plan.deployment, c)["meets_slos"]
    assert held / len(points) >= 0.99
    assert hr["attainment_frac"] == held / len(points)
    assert hr["plan"]["usd_per_month"] > data["nominal"]["usd_per_month"]
    lower = [p for p in hr["probes"] if p["status"] == "ok" and p["multiplier"] < h]
    assert lower and all(p["attainment_frac"] < 0.99 for p in lower)


@pytest.mark.slow
def test_size_mode_without_uncertainty_resizes_to_the_nominal_plan(chatbot: tuple[Workload, Catalog]) -> None:
    data = _study(chatbot, draws=3, mode="size", factor_sigma_scale=0.0, confidence=None)
    rs = data["resized"]
    assert rs["feasible_draws"] == 3
    assert rs["usd_per_month"]["p5"] == rs["usd_per_month"]["p95"] == data["nominal"]["usd_per_month"]
    assert rs["configuration_changed_frac"] == 0.0 and rs["plan_changed_frac"] == 0.0
    nominal_gpus = data["nominal"]["gpus"]
    assert {k: v["p50"] for k, v in rs["gpus_by_pool"].items()} == nominal_gpus
    assert sum(nominal_gpus.values()) == rs["num_gpus"]["p50"]


@pytest.mark.slow
def test_size_mode_spreads_the_cost(chatbot: tuple[Workload, Catalog]) -> None:
    data = _study(chatbot, draws=6, mode="size", factor_sigma_scale=0.0, rate_error_frac=0.3, confidence=None, seed=2)
    cost = data["resized"]["usd_per_month"]
    assert cost["p5"] < cost["p95"]
    assert data["resized"]["plan_changed_frac"] > 0


def test_json_is_identical_for_any_worker_count(run_cli: Run) -> None:
    args = ("study", "robust", str(CHATBOT), "--draws", "8", "--rate-error-frac", "0.2", "--confidence", "0.9", "-f", "json")
    one = run_cli(*args, "--jobs", "1")
    two = run_cli(*args, "--jobs", "2")
    assert one[0] == 0, one[2]
    assert one[1] == two[1]
    doc = json.loads(one[1])
    assert doc["command"] == "study robust" and doc["status"] == "ok"
    assert doc["inputs"]["seed"] == 20 and doc["inputs"]["engine"]["id"] == "vllm"
    assert doc["data"]["uncertainty"]["fitted_on"].startswith("training split")
    other = run_cli(*args, "--jobs", "1", "--seed", "21")
    assert other[1] != one[1]


def test_csv_has_one_row_per_draw(run_cli: Run) -> None:
    code, out, err = run_cli("study", "robust", str(CHATBOT), "--draws", "4", "--jobs", "1", "--confidence", "0.5", "-f", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["draw"] for r in rows] == ["1", "2", "3", "4"]
    assert {"prefill_time_x", "decode_time_x", "rate_x:chat", "meets_slos", "ttft_at_slo_ms:chat", "engine"} <= set(rows[0])


def test_markdown_has_the_class_table(run_cli: Run) -> None:
    code, out, err = run_cli("study", "robust", str(CHATBOT), "--draws", "3", "--jobs", "1", "-f", "markdown")
    assert code == 0, err
    assert out.startswith("# planner study robust\n") and "| chat | " in out and "rate headroom search:" in out


def test_table_says_what_headroom_means(run_cli: Run) -> None:
    code, out, err = run_cli("study", "robust", str(CHATBOT), "--draws", "4", "--jobs", "1", "--factor-sigma-scale", "0")
    assert code == 0, err
    assert "SLO attainment of the nominal plan: 100.0% of draws" in out
    assert "rate headroom at 95% confidence: size for 1 x the forecast rates" in out
    assert "the smallest rate multiplier h >= 1" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--draws", "0"], "--draws 0"),
        (["--draws", "10001"], "--draws 10001"),
        (["--confidence", "1"], "--confidence 1"),
        (["--confidence", "0"], "--confidence 0"),
        (["--rate-error-frac", "-0.1"], "--rate-error-frac -0.1"),
        (["--rate-correlation", "1.5"], "--rate-correlation 1.5"),
        (["--factor-sigma-scale", "-1"], "--factor-sigma-scale -1"),
        (["--mode", "fast"], "--mode fast"),
        (["--jobs", "0"], "--jobs 0"),
        (["--headroom", "cost"], "--headroom 'cost'"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(args: list[str], needle: str, run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert_input_error(run_cli("study", "robust", str(CHATBOT), *args, "-o", str(out)), needle)
    assert not out.exists()


SILICON = REPO / "catalogs" / "measurements" / "aiconfigurator" / "silicon_sample_dense.csv"


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_the_committed_spread_is_the_profiles_measured_one(engine: str) -> None:
    """The catalog's uncertainty block is what the committed profile's errors on the training rows give (no refit):
    re-measured here, every figure, so a hand-edited number fails."""
    import yaml

    cal = api.calibrate_serving([SILICON], engine=engine, refit=False)
    doc = cal.uncertainty_doc("aiconfigurator-core-0-12-0", "2026-09")
    committed = yaml.safe_load((REPO / "catalogs" / "efficiency" / f"{engine}.yaml").read_text())["uncertainty"]
    committed["as_of"] = str(committed["as_of"])
    assert doc == committed
    assert all(e.measurement.model in api.TRAINING_MODELS for e in cal.train)
    assert not any(e.measurement.model in api.TRAINING_MODELS for e in cal.held_out)


@pytest.mark.slow
def test_calibrate_fit_serving_writes_a_spread_the_study_uses(tmp_path: Path, run_cli: Run) -> None:
    import re

    lines = SILICON.read_text().splitlines()
    train = [ln for ln in lines[1:] if re.search(r"8b_instruct_fp8_h200_sxm_vllm_agg_", ln.split(",")[0])][:6]
    assert len(train) == 6
    csv_path = tmp_path / "silicon.csv"
    csv_path.write_text("\n".join([lines[0], *train]) + "\n")
    overlay = tmp_path / "mine"
    overlay.mkdir()
    code, _, err = run_cli(
        "calibrate", "fit", "--serving", str(csv_path), "--engine", "vllm", "--as-of", "2026-12-02",
        "--source", "aiconfigurator-core-0-12-0", "--write", str(overlay / "efficiency.yaml"),
    )  # fmt: skip
    assert code == 0, err
    cat = api.load_catalog([overlay])
    u = cat.engine_uncertainty["vllm"]
    assert u.rows == 6 and u.held_out_rows == 0 and u.as_of == "2026-12-02"
    assert u.gpus == ("h200-sxm",)
    assert u != catalog_spread()
    code, out, err = run_cli(
        "study", "robust", str(CHATBOT), "--draws", "3", "--jobs", "1", "--catalog-dir", str(overlay), "-f", "json"
    )
    assert code == 0, err
    assert json.loads(out)["data"]["uncertainty"]["rows"] == 6
    assert "factors not fitted with the overheads" not in err  # the overlay's spread is of its own factors


def catalog_spread() -> Any:
    return api.load_catalog().engine_uncertainty["vllm"]


def test_factors_fitted_elsewhere_make_the_spread_an_assumption(chatbot: tuple[Workload, Catalog]) -> None:
    workload, cat = chatbot
    _, plain = study_robust(workload, cat, draws=2, jobs=1, confidence=None)
    assert not any("factors not fitted with the overheads" in w for w in plain)
    assert any("measured on h100-sxm, h200-sxm rows only: on a100-sxm-80gb" in w for w in plain)
    mine = replace(cat, efficiency={g: replace(e, fitted_on="my own step times") for g, e in cat.efficiency.items()})
    _, warned = study_robust(workload, mine, draws=2, jobs=1, confidence=None)
    assert any(w.startswith("a100-sxm-80gb, h100-sxm: factors not fitted with the overheads") for w in warned), warned
    _, off = study_robust(workload, mine, draws=2, jobs=1, confidence=None, factor_sigma_scale=0.0)
    assert not any("spread" in w for w in off)
