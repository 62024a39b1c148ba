"""``planner profile``: a request trace → its workload profile, the prefill/decode share of one replica, and the
workload document ``planner size`` reads.

:func:`run_profile` does everything the command does except printing and writing: it checks the options, loads the
catalog (only when a model is named), reads and profiles the trace, computes the phase share, and, when a workload
file is asked for, builds, validates and lays out the document to write there. The command prints the result and
writes :attr:`ProfileRun.workload_text` to :attr:`ProfileOptions.workload_file`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from planner.domain import Precision
from planner.errors import InputError

if TYPE_CHECKING:
    from planner.io.traces import TraceFile
    from planner.profile.analysis import PhaseShare, Profile

__all__ = [
    "PROFILE_PRECISIONS",
    "ProfileOptions",
    "ProfileRun",
    "ProgressCallback",
    "parse_classes",
    "run_profile",
]

PROFILE_PRECISIONS: tuple[Precision, ...] = ("bf16", "fp8")  # the precisions a profiled workload may name

ProgressCallback = Callable[[int, int], None]  # (bytes of the trace read, total bytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileOptions:
    """Everything ``planner profile`` takes. Values are as given (``classes`` as typed, ``precision`` unchecked):
    :func:`run_profile` checks them with the command's error messages."""

    trace: Path  # CSV, JSONL or Parquet; gzip allowed
    trace_format: str = "auto"  # auto, azure, burstgpt, mooncake, vidur, csv or jsonl
    columns: str | None = None  # time=NAME,input=NAME,output=NAME[,hash_ids=NAME][,time_unit=s|ms|us|ns]
    window_s: float = 60.0  # sliding window of the peak rate
    classes: str | int | None = None  # request classes by length: a count, or "auto"; None: no classes
    model: str | None = None  # for the prefill/decode share; needed for a workload file
    gpu: str = "h100-sxm"  # GPU of the prefill/decode share
    tp: int | None = None  # tensor-parallel degree (None: the smallest that fits)
    precision: str = "bf16"  # bf16 or fp8
    ttft_p99_ms: float | None = None  # TTFT target at p99 of the workload document
    tpot_p99_ms: float | None = None  # TPOT target at p99 of the workload document
    workload_file: Path | None = None  # where the workload document is to be written (None: no document)
    catalog_dirs: Sequence[Path] = ()
    progress: ProgressCallback | None = None  # called while the trace is read


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileRun:
    """What :func:`run_profile` found. ``inputs`` is the JSON envelope's ``inputs`` object; the envelope's data is
    :func:`planner.report.profile.profile_data` of ``profile`` and ``phase``."""

    options: ProfileOptions
    trace_file: TraceFile  # the requests read, the resolved format and container
    profile: Profile
    phase: PhaseShare | None  # None without a model
    inputs: dict[str, Any]
    warnings: tuple[str, ...]
    workload: dict[str, Any] | None  # the workload document (None unless a workload file was asked for)
    workload_text: str | None  # the YAML to write to ``options.workload_file``, its header comments included
    files_read: tuple[Path, ...]  # the files the options name that were read (no output may replace them)


def parse_classes(classes: str | int | None) -> int | Literal["auto"] | None:
    """``--classes``: a number of classes or ``auto``."""
    if classes is None or isinstance(classes, int):
        return classes
    if classes.strip().lower() == "auto":
        return "auto"
    try:
        return int(classes)
    except ValueError:
        raise InputError(f"--classes {classes}: give a number of classes or auto") from None


def _slo_flags(options: ProfileOptions) -> dict[str, float | None]:
    return {"--ttft-p99-ms": options.ttft_p99_ms, "--tpot-p99-ms": options.tpot_p99_ms}


def _check(options: ProfileOptions) -> tuple[int | Literal["auto"] | None, Precision]:
    k = parse_classes(options.classes)
    if options.precision not in PROFILE_PRECISIONS:
        raise InputError(f"--precision {options.precision}: use bf16 or fp8")
    if options.workload_file is not None and options.model is None:
        raise InputError("-o writes a workload for planner size, which needs the model: add --model")
    for flag, value in _slo_flags(options).items():
        if value is not None and not value > 0:
            raise InputError(f"{flag} {value}: must be a positive number of milliseconds")
    return k, options.precision


def run_profile(options: ProfileOptions) -> ProfileRun:
    """Profile a request trace: rates, burstiness, length percentiles, prefix reuse, classes; with a model, the
    prefill/decode share of one replica; with a workload file, the workload document to write there."""
    from planner.io.sources import reading_once

    with reading_once():
        return _run_profile(options)


def _run_profile(options: ProfileOptions) -> ProfileRun:
    from planner.api.inputs import hardware, resolve_gpu, resolve_model
    from planner.io.catalog import load_catalog
    from planner.io.traces import read_trace
    from planner.profile.analysis import phase_share_for
    from planner.profile.analysis import profile as make_profile

    k, precision = _check(options)
    trace_path = options.trace
    catalog = load_catalog(options.catalog_dirs) if options.model is not None else None

    tf = read_trace(trace_path, options.trace_format, options.columns, progress=options.progress)
    trace = tf.trace
    prof = make_profile(trace, window_s=options.window_s, classes=k, origin=str(trace_path))
    phase = None
    if options.model is not None and catalog is not None:
        cat = catalog
        m = resolve_model(cat, options.model)
        g = resolve_gpu(cat, options.gpu)
        phase = phase_share_for(
            trace, m, g, cat.engine, lambda t: hardware(cat, g, t).for_model(m), tp=options.tp, precision=precision
        )
    warnings: list[str] = []
    if trace.failed:
        warnings.append(f"{trace_path}: {trace.failed:,} of {tf.rows:,} requests failed (0 response tokens) and are left out")
    if prof.out_of_order_requests:
        warnings.append(
            f"{trace_path}: timestamps are not sorted ({prof.out_of_order_requests:,} requests arrive before the one logged "
            "above them); the trace was sorted by arrival time before profiling"
        )
    reuse = prof.prefix_reuse
    if reuse is not None and reuse.block_mismatch_requests:
        warnings.append(
            f"{trace_path}: {reuse.block_mismatch_requests:,} requests carry a number of hash_ids other than "
            f"ceil(input tokens / {reuse.block_tokens}); their prompt tokens beyond the blocks count as misses, and the "
            f"token hit share assumes {reuse.block_tokens}-token blocks"
        )
    inputs: dict[str, Any] = {
        "trace": str(trace_path),
        "trace_format": tf.format,
        "container": tf.container,
        "compressed": tf.compressed,
        "rows_read": tf.rows,
        "window_s": options.window_s,
        "classes": options.classes,
        "model": None if phase is None else phase.model,
        "gpu": None if phase is None else phase.gpu,
        "tp": None if phase is None else phase.tp,
        "precision": options.precision,
        "ttft_p99_ms": options.ttft_p99_ms,
        "tpot_p99_ms": options.tpot_p99_ms,
    }
    doc = text = None
    if options.workload_file is not None and phase is not None:
        doc, text, doc_warnings = _workload(options, prof, phase.model, precision)
        warnings += doc_warnings
        inputs["workload_file"] = str(options.workload_file)
    return ProfileRun(
        options=options,
        trace_file=tf,
        profile=prof,
        phase=phase,
        inputs=inputs,
        warnings=tuple(warnings),
        workload=doc,
        workload_text=text,
        files_read=(trace_path,),
    )


def _workload(options: ProfileOptions, prof: Profile, model: str, precision: Precision) -> tuple[dict[str, Any], str, list[str]]:
    """The workload document for ``options.workload_file``, validated as ``planner size`` will read it, its YAML
    text (with header comments) and its warnings."""
    from planner.io.workload import parse_workload
    from planner.io.yamlio import dumps
    from planner.report.profile import workload_document

    assert options.workload_file is not None
    output = options.workload_file
    missing = [f for f, v in _slo_flags(options).items() if v is None]
    ttft, tpot = options.ttft_p99_ms, options.tpot_p99_ms
    slo = {"ttft_p99_ms": ttft, "tpot_p99_ms": tpot} if ttft is not None and tpot is not None else None
    doc, warnings = workload_document(prof, model=model, precision=precision, slo=slo)
    # Validate what planner size will read (with a stand-in SLO when none was given).
    check = doc if slo else {**doc, "classes": [{**c, "slo": {"ttft_p99_ms": 1, "tpot_p99_ms": 1}} for c in doc["classes"]]}
    parse_workload(check, str(output))
    header = f"# workload profiled from {options.trace} by planner profile\n"
    if missing:
        header += (
            f"# no slo: planner size needs one per class; rerun with {' and '.join(missing)} "
            "or add slo: {ttft_p99_ms: ..., tpot_p99_ms: ...} to each class\n"
        )
        warnings.append(
            f"{output}: written without slo (missing {', '.join(missing)}); planner size needs "
            "--ttft-p99-ms and --tpot-p99-ms given here, or an slo added to each class"
        )
    return doc, header + dumps(doc), warnings
