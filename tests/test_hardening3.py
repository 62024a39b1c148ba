"""Hardening, round three (issue 17): the input readers against the medium and low findings M2-M6, L1-L3
and L5-L8. Each hostile input is one ``error:`` line and exit 2 (or exit 0 where the input is valid).

The small reproducers are copies in tests/data/hardening/; large inputs are made in the test (a sparse
file, a gzip stream written from a generator), and the trace limits are lowered with monkeypatch where
reaching the real ones would take minutes."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CliResult, assert_input_error, cli

from planner.io import sources, traces

DATA = Path(__file__).resolve().parent / "data" / "hardening"


def _ok(result: CliResult) -> None:
    code, _, err = result
    assert code == 0, err
    assert "Traceback" not in err and "RuntimeWarning" not in err, err


def _json_error(result: CliResult) -> CliResult:
    """A failed ``-f json`` run prints the ``status: error`` envelope on stdout (README: JSON output): check it
    against the ``error:`` line, then drop it, so that :func:`assert_input_error` checks the rest."""
    code, out, err = result
    if code == 0 or not out:
        return result
    doc = json.loads(out)
    assert doc["status"] == "error" and doc["error"]["exit_code"] == code, out
    assert f"error: {doc['error']['message']}" in err.splitlines(), (out, err)
    return code, "", err


def _gzip(path: Path, chunks: Iterator[bytes]) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as fh:
        for chunk in chunks:
            fh.write(chunk)
    return path


def _catalog(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """The test catalog (one GPU xgpu, model mymodel, link mylink) with one line of ``file`` replaced."""
    directory = tmp_path / "cat"
    shutil.copytree(DATA / "catalog", directory)
    path = directory / file
    text = path.read_text()
    assert old in text, (file, old)
    path.write_text(text.replace(old, new, 1))
    return directory


def _size_cat(directory: Path) -> CliResult:
    return _json_error(cli("size", str(DATA / "cat_workload.yaml"), "--catalog-dir", str(directory), "-f", "json"))


# --- M3: sizes checked before reading ----------------------------------------------------------


def test_a_sparse_20_gib_workload_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(20 << 30)
    before = sources.reads
    assert_input_error(cli("size", str(big)), f"{big}: file larger than 16 MiB")
    assert sources.reads == before


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_read_to_the_limit_only() -> None:
    assert_input_error(cli("size", "/dev/zero"), "/dev/zero: file larger than 16 MiB")
    assert_input_error(cli("profile", "/dev/zero"), "not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_input_never_hangs(tmp_path: Path) -> None:
    fifo = tmp_path / "w.yaml"
    os.mkfifo(fifo)
    assert_input_error(cli("size", str(fifo)))  # no writer: read as empty, not waited on
    assert_input_error(cli("profile", str(fifo)), "not a regular file")
    directory = tmp_path / "cat"
    directory.mkdir()
    os.mkfifo(directory / "gpus.yaml")
    assert_input_error(_size_cat(directory), "gpus.yaml: not a regular file")


def test_a_dangling_catalog_symlink_is_an_error_not_skipped(tmp_path: Path) -> None:
    directory = tmp_path / "cat"
    directory.mkdir()
    (directory / "gpus.yaml").symlink_to(tmp_path / "nowhere.yaml")
    assert_input_error(_size_cat(directory), "gpus.yaml: broken symbolic link")
    (directory / "gpus.yaml").unlink()
    (directory / "gpus.yaml").symlink_to(directory / "gpus.yaml")
    assert_input_error(_size_cat(directory), "gpus.yaml: broken symbolic link")


def test_a_gzip_bomb_of_one_long_line_stops_at_the_line_limit(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"timestamp,input_tokens,output_tokens\n0,1,1\n1,"
        for _ in range(64):  # 64 MiB of one line (the reproducer has 4 GiB: the same path)
            yield b"1" * (1 << 20)

    bomb = _gzip(tmp_path / "bomb.csv.gz", chunks())
    assert_input_error(cli("profile", str(bomb)), f"{bomb}:3: line longer than 1 MiB")


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_more_rows_than_the_row_limit_are_refused_while_streaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setattr(traces, "MAX_TRACE_ROWS", 1000)

    def chunks() -> Iterator[bytes]:
        if suffix == "csv":
            yield b"timestamp,input_tokens,output_tokens\n"
        for i in range(5000):
            row = f"{i},10,10\n" if suffix == "csv" else f'{{"timestamp": {i}, "input_tokens": 10, "output_tokens": 10}}\n'
            yield row.encode()

    path = _gzip(tmp_path / f"rows.{suffix}.gz", chunks())
    assert_input_error(cli("profile", str(path)), "more than 1,000 requests")


def test_gzip_expansion_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traces, "MAX_TRACE_BYTES", 1 << 20)

    def chunks() -> Iterator[bytes]:
        yield b"timestamp,input_tokens,output_tokens\n"
        for _ in range(64):
            yield b"\n" * (1 << 16)  # blank lines: no rows, only text

    path = _gzip(tmp_path / "blank.csv.gz", chunks())
    assert_input_error(cli("profile", str(path)), "GiB of trace text (after gzip)")


def test_big_csv_fields_name_the_line(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_text("timestamp,input_tokens,output_tokens," + "x" * 200_000 + "\n0,1,1,a\n")
    assert_input_error(cli("profile", str(header)), f"{header}:1: malformed CSV (field larger than field limit")
    data = tmp_path / "data.csv"
    data.write_text("timestamp,input_tokens,output_tokens\n0,100,10\n1,100," + "1" * 200_000 + "\n")
    assert_input_error(cli("profile", str(data)), f"{data}:3: malformed CSV (field larger than field limit")


# --- M4: nesting, huge integers, types, magnitudes, paths --------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep_flow", "a: " + "[" * 100_000 + "]" * 100_000 + "\n"),
        ("deep_map", "a: " + "{b: " * 5_000 + "1" + "}" * 5_000 + "\n"),
        ("deep_block", "".join(" " * i + f"k{i}:\n" for i in range(3_000)) + " " * 3_000 + "v: 1\n"),
    ],
)
def test_deeply_nested_yaml_is_one_error(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    assert_input_error(cli("size", str(path)), "nested too deeply")


def test_deep_and_huge_jsonl_values(tmp_path: Path) -> None:
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"timestamp": 0, "input_tokens": 1, "output_tokens": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    assert_input_error(cli("profile", str(deep)), f"{deep}:1: JSON nested too deeply")
    assert_input_error(cli("profile", str(DATA / "j_bigint.jsonl")), "a number with too many digits")


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("p_hash_str.parquet", "column 'hash_ids' has type list<element: string>; expected a list of integers"),
        ("p_hash_scalar.parquet", "column 'hash_ids' has type int64; expected a list of integers"),
        ("p_ts_s_9999.parquet", "a timestamp outside the years 1678-2262"),
    ],
)
def test_parquet_columns_of_the_wrong_type(name: str, needle: str) -> None:
    assert_input_error(cli("profile", str(DATA / name), "-t", "csv"), needle)


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("slo_bigint.yaml", "ttft_p99_ms must be a positive finite number of milliseconds"),
        ("max_gpus_bigint.yaml", "constraints.max_gpus.h100-sxm"),
        ("isl_p50_tiny.yaml", "classes.0.input_tokens.p50: Value error, 1e-300 is out of range"),
        ("calib_long_component.yaml", "calibration: a path component longer than 255 bytes"),
        ("hist_huge_weight.yaml", "classes.0.input_tokens.histogram.0.1"),  # L5: no RuntimeWarning either
    ],
)
def test_workload_values_out_of_range(name: str, needle: str) -> None:
    assert_input_error(_json_error(cli("size", str(DATA / name), "-f", "json")), needle)


@pytest.mark.parametrize("name", ["prop_wl_nul.yaml", "prop_wl_surrogate.yaml"])
def test_impossible_paths_inside_a_proposal(name: str) -> None:
    assert_input_error(cli("check", str(DATA / name)))


def test_impossible_calibration_paths(tmp_path: Path) -> None:
    base = (DATA / "wl.yaml").read_text()
    for value, needle in (('"a\\0b"', "a path cannot contain a NUL byte"), ('"\\ud800"', "calibration")):
        path = tmp_path / "w.yaml"
        path.write_text(base + f"calibration: {value}\n")
        assert_input_error(cli("size", str(path)), needle)


@pytest.mark.parametrize(
    ("file", "old", "new", "field"),
    [
        ("gpus.yaml", "hbm_capacity_gib: 80", "hbm_capacity_gib: 1.0e+300", "gpus.xgpu.hbm_capacity_gib"),
        ("gpus.yaml", "nvlink_gbyte_per_s: 450", "nvlink_gbyte_per_s: 1.0e-300", "gpus.xgpu.nvlink_gbyte_per_s"),
        ("gpus.yaml", "tdp_w: 700", "tdp_w: true", "gpus.xgpu.tdp_w"),
        ("links.yaml", "bandwidth_gbit_per_s: 400", "bandwidth_gbit_per_s: 1.0e+300", "links.mylink.bandwidth_gbit_per_s"),
        ("links.yaml", "bandwidth_gbit_per_s: 400", "bandwidth_gbit_per_s: 9223372036854775808", "bandwidth_gbit_per_s"),
        ("efficiency.yaml", "allreduce_latency_s: 1.0e-05", "allreduce_latency_s: 1.0e+300", "allreduce_latency_s"),
        ("efficiency.yaml", "allreduce_bandwidth_frac: 0.5", "allreduce_bandwidth_frac: 1.0e-300", "allreduce_bandwidth_frac"),
        ("models.yaml", "num_layers: 32", "num_layers: " + "1" + "0" * 400, "models.mymodel.num_layers"),
        ("models.yaml", "num_layers: 32", "num_layers: true", "models.mymodel.num_layers"),
        ("prices.yaml", "usd_per_gpu_hour: 2.0", "usd_per_gpu_hour: 1.0e+300", "usd_per_gpu_hour"),
    ],
)
def test_absurd_catalog_magnitudes_name_the_field(tmp_path: Path, file: str, old: str, new: str, field: str) -> None:
    assert_input_error(_size_cat(_catalog(tmp_path, file, old, new)), field)


def test_the_test_catalog_itself_is_valid() -> None:
    _ok(_size_cat(DATA / "catalog"))


# --- M5: strict YAML scalars --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("rate_yes.yaml", "'yes'"),
        ("rate_str.yaml", "'20'"),
        ("rate_octal.yaml", "'010'"),
        ("rate_hex.yaml", "'0x10'"),
        ("rate_sexagesimal.yaml", "'1:30'"),
    ],
)
def test_no_yaml_1_1_coercion_into_numbers(name: str, shown: str) -> None:
    assert_input_error(
        _json_error(cli("size", str(DATA / name), "-f", "json")),
        f"classes.0.rate_rps: Value error, expected a number, not the string {shown}",
    )


def test_booleans_are_not_numbers(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text((DATA / "wl.yaml").read_text().replace("rate_rps: 5", "rate_rps: true"))
    assert_input_error(cli("size", str(path)), "expected a number, not the boolean true")


def test_1e3_is_a_float_everywhere() -> None:
    _ok(cli("size", str(DATA / "slo_1e3.yaml"), "-f", "json"))


# --- M6: prompts longer than the context window -------------------------------------------------


def test_prompts_longer_than_the_context_window_are_refused() -> None:
    assert_input_error(
        cli("size", str(DATA / "ctx_over.yaml")), "classes.0 (chat): input_tokens: 500,000 tokens", "context window of 131,072"
    )
    assert_input_error(
        cli("size", str(DATA / "wl_ctx1.yaml"), "--catalog-dir", str(DATA / "catalog_ctx1")),
        "mymodel's context window of 1 tokens",
    )
    flags = ("--model", "llama-3.1-8b", "--rate-rps", "1", "--ttft-p99-ms", "1000", "--tpot-p99-ms", "100")
    assert_input_error(cli("size", *flags, "--isl", "200000", "--osl", "100"), "input_tokens: 200,000 tokens")
    assert_input_error(cli("size", *flags, "--isl", "131000", "--osl", "1000"), "input_tokens + output_tokens: 132,000")


# --- M2: trace time spans -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("ns_epoch_1h.csv", ()),
        ("span_1e15.csv", ()),
        ("ts_1e308.csv", ()),
        ("p_int_ts_big.parquet", ("-t", "csv")),
    ],
)
def test_trace_spans_over_ten_years_are_refused_with_a_time_unit_hint(name: str, args: tuple[str, ...]) -> None:
    lines = assert_input_error(cli("profile", str(DATA / name), *args), "the arrivals span", "at most 10 years")
    assert len(lines) == 2 and "time_unit=ns" in lines[1]


def test_the_hinted_time_unit_reads_the_nanosecond_trace() -> None:
    _ok(cli("profile", str(DATA / "ns_epoch_1h.csv"), "--columns", "time_unit=ns"))


def test_a_span_of_1e_300_s_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,input_tokens,output_tokens\n0,10,10\n1e-300,10,10\n")
    assert_input_error(cli("profile", str(path)), "rates are undefined below")


# --- the low findings ---------------------------------------------------------------------------


def test_l1_max_gpus_with_one_gpu_twice() -> None:
    assert_input_error(cli("size", str(DATA / "dupkey_max_gpus_canon.yaml")), "'h100-sxm' and 'H100_SXM' are the same GPU")


def test_l2_merge_keys_are_supported(tmp_path: Path) -> None:
    _ok(cli("size", str(DATA / "merge_inclass.yaml"), "-f", "json"))


@pytest.mark.parametrize(
    ("name", "needle"),
    [("isl_mean_gt_p99.yaml", "mean 100000 is above the p99 30"), ("isl_mean_lt_p50.yaml", "mean 1 is below")],
)
def test_l3_inconsistent_statistics(name: str, needle: str) -> None:
    assert_input_error(cli("size", str(DATA / name)), "inconsistent statistics", needle)


def test_l3_fractional_token_counts_below_one(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text((DATA / "wl.yaml").read_text().replace("p50: 150", "p50: 0.5"))
    assert_input_error(cli("size", str(path)), "output_tokens.p50: Value error, 0.5 is out of range")


@pytest.mark.parametrize("name", ["bom.csv", "blank_lines.csv", "p_ok.parquet"])
def test_l6_bom_blank_lines_and_generic_parquet_are_read(name: str) -> None:
    _ok(cli("profile", str(DATA / name)))


def test_l6_a_jsonl_trace_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rows = "".join(f'{{"timestamp": {i}, "input_tokens": 10, "output_tokens": 5}}\n' for i in range(5))
    path.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    _ok(cli("profile", str(path)))


@pytest.mark.parametrize(
    ("name", "needle"), [("calib_etc.yaml", "no efficiency.yaml in"), ("calib_passwd.yaml", "a file, not an efficiency.yaml")]
)
def test_l7_calibration_that_is_no_overlay(name: str, needle: str) -> None:
    assert_input_error(cli("size", str(DATA / name)), "calibration:", needle)


@pytest.mark.parametrize("gpu_id", ['"x\\ny"', '""', "x" * 10_000, '"<script>"'])
def test_l8_catalog_ids_follow_the_pattern(tmp_path: Path, gpu_id: str) -> None:
    directory = _catalog(tmp_path, "gpus.yaml", "  xgpu:", f"  ? {gpu_id}\n  :")  # an explicit key: any length
    assert_input_error(_size_cat(directory), "String should match pattern")
