"""``planner trace synth``: seeded synthetic request traces (:mod:`planner.sim.synth`) in any supported format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from planner.errors import InputError
from planner.io.traces import READ_FORMATS, WRITE_FORMATS

if TYPE_CHECKING:
    from planner.domain import Trace
    from planner.sim.synth import SynthSpec

__all__ = [
    "TRACE_READ_FORMATS",
    "TRACE_WRITE_FORMATS",
    "TraceSynthOptions",
    "TraceSynthRun",
    "run_trace_synth",
    "synth_spec",
    "synth_trace",
]

TRACE_READ_FORMATS = READ_FORMATS  # what ``planner profile --trace-format`` reads
TRACE_WRITE_FORMATS = WRITE_FORMATS  # what ``planner trace synth --format-out`` writes


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSynthOptions:
    """Everything ``planner trace synth`` takes (the defaults are the command's)."""

    path: Path  # the file to write (gzip when the name ends in .gz)
    file_format: str = "azure"  # azure, azure-2024, burstgpt, mooncake, vidur, csv or jsonl
    requests: int = 1000
    rate_rps: float = 1.0  # mean arrival rate
    cv2: float = 1.0  # squared CV of inter-arrival gaps (1 = Poisson, > 1 bursty Gamma)
    isl_mean: float = 1024.0  # mean input tokens (lognormal)
    isl_sigma: float = 1.0  # log-space sigma of input tokens
    isl_max: int = 131_072
    osl_mean: float = 256.0  # mean output tokens (lognormal)
    osl_sigma: float = 0.8
    osl_max: int = 16_384
    diurnal: bool = False  # daily cycle: the rate swings ±50% over 24 h
    prefix_share: float = 0.5  # share of requests opening with a shared prefix (hash_ids)
    fail_frac: float = 0.0  # share of failed requests (0 output tokens)
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSynthRun:
    """What :func:`run_trace_synth` wrote."""

    options: TraceSynthOptions
    spec: SynthSpec
    trace: Trace
    path: Path
    file_format: str


def _check_format(options: TraceSynthOptions) -> None:
    if options.file_format not in TRACE_WRITE_FORMATS:
        raise InputError(f"--format-out {options.file_format}: use one of {', '.join(TRACE_WRITE_FORMATS)}")


def synth_spec(options: TraceSynthOptions) -> SynthSpec:
    """The :class:`planner.sim.synth.SynthSpec` of the options (checked when synthesized)."""
    from planner.sim.synth import SynthSpec

    return SynthSpec(
        requests=options.requests,
        rate_rps=options.rate_rps,
        cv2=options.cv2,
        isl_mean=options.isl_mean,
        isl_sigma=options.isl_sigma,
        isl_max=options.isl_max,
        osl_mean=options.osl_mean,
        osl_sigma=options.osl_sigma,
        osl_max=options.osl_max,
        diurnal=options.diurnal,
        prefix_share=options.prefix_share,
        fail_frac=options.fail_frac,
        seed=options.seed,
    )


def synth_trace(options: TraceSynthOptions) -> Trace:
    """The synthetic trace of the options, not written anywhere (same seed, same requests)."""
    from planner.sim.synth import synthesize

    return synthesize(synth_spec(options))


def run_trace_synth(options: TraceSynthOptions) -> TraceSynthRun:
    """Synthesize the trace and write it to ``options.path`` (atomically) in ``options.file_format``."""
    from planner.io.traces import write_trace
    from planner.sim.synth import synthesize

    _check_format(options)
    spec = synth_spec(options)
    trace = synthesize(spec)
    write_trace(options.path, trace, options.file_format)
    return TraceSynthRun(options=options, spec=spec, trace=trace, path=options.path, file_format=options.file_format)
