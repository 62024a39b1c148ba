"""Property-based fuzzing of hand-written inputs: any document either loads or fails with one
PlannerError whose message names the file (never another exception). bench/fuzz.py runs the same
properties with many more examples."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.domain import Catalog
from planner.errors import PlannerError
from planner.io.catalog import load_catalog
from planner.io.workload import parse_workload, to_domain
from planner.io.yamlio import dumps, loads

VALID_WORKLOAD: dict[str, Any] = {
    "model": "llama-3.1-70b",
    "precision": "bf16",
    "classes": [
        {
            "name": "chat",
            "rate_rps": 20,
            "interarrival_cv2": 1.0,
            "input_tokens": {"mean": 2000, "p50": 1500, "p90": 4000, "p99": 7000},
            "output_tokens": {"mean": 300, "p50": 250, "p90": 600, "p99": 1000},
            "slo": {"ttft_p99_ms": 1000, "tpot_p99_ms": 60},
        }
    ],
    "hardware": {"prefill_gpus": ["h100-sxm"], "decode_gpus": ["a100-sxm-80gb", "h100-sxm"], "links": ["ib-ndr-400"]},
    "constraints": {"max_gpus": {"a100-sxm-80gb": 64}, "power_cap_kw": 120, "headroom_frac": 0.2, "redundancy": 1},
    "pricing": {"mode": "on-demand"},
    "objective": "cost",
}

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(VALID_WORKLOAD)


def _mutate(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def _check(doc: Any, catalog: Catalog) -> None:
    try:
        spec = parse_workload(doc, "fuzz.yaml")
        to_domain(spec, catalog, "fuzz.yaml")
    except PlannerError as exc:
        assert exc.message.startswith("fuzz.yaml"), exc.message
        assert "\n" not in exc.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=VALUES, delete=st.booleans())
def test_mutated_workloads_load_or_fail_cleanly(catalog: Catalog, path: tuple[Any, ...], value: Any, delete: bool) -> None:
    _check(_mutate(VALID_WORKLOAD, path, value, delete), catalog)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=VALUES)
def test_arbitrary_documents_fail_cleanly(catalog: Catalog, doc: Any) -> None:
    _check(doc, catalog)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_yaml_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        loads(text, "fuzz.yaml")
    except PlannerError as exc:
        assert exc.message.startswith("fuzz.yaml")


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["gpus", "links", "models"]), key=st.text(min_size=1, max_size=12), value=VALUES)
def test_mutated_user_catalogs_fail_cleanly(tmp_path_factory: Any, path: str, key: str, value: Any) -> None:
    root = Path(__file__).resolve().parent.parent / "catalogs"
    doc = yaml.safe_load((root / f"{path}.yaml").read_text())
    first = sorted(doc[path])[0]
    doc[path][first][key] = value
    d = tmp_path_factory.mktemp("cat")
    try:
        (d / f"{path}.yaml").write_text(dumps(doc))
    except (ValueError, yaml.YAMLError):
        return  # a value PyYAML cannot write (e.g. a lone surrogate): not an input a user can give
    try:
        load_catalog([d])
    except PlannerError as exc:
        assert str(d) in exc.message, exc.message
