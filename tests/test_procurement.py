"""Procurement-grade plans (issue 15): one price basis per run; capex never ends in an internal error."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import assert_input_error, cli

WORKLOAD = """\
model: llama-3.1-8b
classes:
  - name: chat
    rate_rps: 10
    input_tokens: {mean: 1000, p50: 900, p90: 2000, p99: 4000}
    output_tokens: {mean: 200, p50: 180, p90: 400, p99: 800}
    slo: {ttft_p99_ms: 2000, tpot_p99_ms: 60}
"""


def _write(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "w.yaml"
    path.write_text(WORKLOAD + extra)
    return str(path)


def test_capex_with_the_default_hardware_plans_on_the_gpus_that_have_a_server_price(tmp_path: Path) -> None:
    code, out, err = cli("size", _write(tmp_path, "pricing: {mode: capex, amortization_years: 4}\n"), "-f", "json")
    assert code == 0, err
    gpus = {p["gpu"] for p in json.loads(out)["data"]["pools"]}
    assert gpus == {"h100-sxm"}  # the one GPU catalogs/prices.yaml has a server price for


def test_capex_names_every_listed_gpu_without_a_server_price(tmp_path: Path) -> None:
    extra = "pricing: {mode: capex, amortization_years: 4}\nhardware: {decode_gpus: [a100-sxm-80gb, b200, h100-sxm]}\n"
    lines = assert_input_error(cli("size", _write(tmp_path, extra)), "hardware.decode_gpus", "a100-sxm-80gb, b200")
    assert "have no server price" in lines[0]
    assert "h100-sxm" in lines[1]  # the hint names the GPUs that have one


def test_capex_without_amortization_years_is_an_input_error_not_an_internal_one(tmp_path: Path) -> None:
    assert_input_error(cli("size", _write(tmp_path, "pricing: {mode: capex}\n")), "amortization_years")


def test_provider_prices_every_gpu_from_one_provider(tmp_path: Path) -> None:
    code, out, err = cli("size", _write(tmp_path, "pricing: {provider: lambda}\n"), "-f", "json")
    assert code == 0, err
    data = json.loads(out)["data"]
    lambda_usd = {"a100-sxm-40gb": 1.29, "a100-sxm-80gb": 1.79, "b200": 4.99, "h100-pcie": 2.49, "h100-sxm": 2.99}
    expected = sum(lambda_usd[p["gpu"]] * p["tp"] * p["replicas"] for p in data["pools"])  # catalogs/prices.yaml
    assert abs(data["cost"]["usd_per_hour"] - expected) < 1e-6 * expected
    assert all(p["gpu"] in lambda_usd for p in data["pools"])  # GPUs Lambda does not list are left out


def test_an_unknown_provider_or_a_provider_with_capex_is_an_input_error(tmp_path: Path) -> None:
    assert_input_error(cli("size", _write(tmp_path, "pricing: {provider: aws}\n")), "pricing.provider", "CoreWeave, Lambda")
    assert_input_error(
        cli("size", _write(tmp_path, "pricing: {mode: capex, amortization_years: 4, provider: lambda}\n")), "provider"
    )


def test_a_plan_on_two_price_bases_warns_and_names_them(tmp_path: Path) -> None:
    extra = "hardware: {prefill_gpus: [h100-sxm], decode_gpus: [a100-pcie-80gb]}\n"
    code, _, err = cli("size", _write(tmp_path, extra), "-f", "json")
    assert code == 0, err
    assert "mix price bases" in err
    assert "a100-pcie-80gb CoreWeave 2024-02" in err and "h100-sxm CoreWeave 2026-02" in err
    code, _, err = cli("size", _write(tmp_path, extra.replace("a100-pcie-80gb", "a100-sxm-80gb")), "-f", "json")
    assert code == 0 and "mix price bases" not in err  # both on CoreWeave's 2026-02 instance list
