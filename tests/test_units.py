"""Unit constants and conversions (planner.units)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from planner import units

finite = st.floats(min_value=1e-9, max_value=1e15, allow_nan=False, allow_infinity=False)


def test_gib_is_two_to_the_thirtieth() -> None:
    assert units.GIB == 2**30 == 1073741824
    assert units.gib_to_bytes(80) == 80 * 1073741824


def test_gb_is_decimal() -> None:
    assert units.GB == 1e9
    assert units.gbyte_per_s_to_bytes_per_s(3350) == 3.35e12


def test_gbit_to_bytes() -> None:
    # 400 Gb/s is 50 GB/s: 8 bits per byte.
    assert units.gbit_per_s_to_bytes_per_s(400) == 50e9
    assert units.gbit_per_s_to_bytes_per_s(25) == 3.125e9
    assert units.bytes_per_s_to_gbit_per_s(50e9) == 400


def test_tflop_and_time_conversions() -> None:
    assert units.tflop_per_s_to_flop_per_s(989.4) == 989.4e12
    assert units.ms_to_s(1500) == 1.5
    assert units.s_to_ms(0.25) == 250
    assert units.us_to_s(0.6) == 6e-7


def test_precision_bytes() -> None:
    assert units.PRECISION_BYTES["bf16"] == 2
    assert units.PRECISION_BYTES["fp8"] == 1


def test_hours_per_month_is_a_twelfth_of_a_year() -> None:
    assert units.HOURS_PER_MONTH * 12 == 8760


@settings(max_examples=100, deadline=None)
@given(finite)
def test_gbit_round_trip(x: float) -> None:
    assert math.isclose(units.bytes_per_s_to_gbit_per_s(units.gbit_per_s_to_bytes_per_s(x)), x, rel_tol=1e-12)


@settings(max_examples=100, deadline=None)
@given(finite)
def test_ms_round_trip(x: float) -> None:
    assert math.isclose(units.s_to_ms(units.ms_to_s(x)), x, rel_tol=1e-12)
    assert math.isclose(units.ms_to_s(units.s_to_ms(x)), x, rel_tol=1e-12)


@settings(max_examples=100, deadline=None)
@given(finite)
def test_scalings_are_linear(x: float) -> None:
    assert math.isclose(units.gib_to_bytes(x) / x, 2**30, rel_tol=1e-12)
    assert math.isclose(units.gbyte_per_s_to_bytes_per_s(x) / x, 1e9, rel_tol=1e-12)
    assert math.isclose(units.gbit_per_s_to_bytes_per_s(x) / x, 1.25e8, rel_tol=1e-12)
    assert math.isclose(units.us_to_s(x) * 1e6, x, rel_tol=1e-12)
    assert math.isclose(units.tflop_per_s_to_flop_per_s(x) / 1e12, x, rel_tol=1e-12)
