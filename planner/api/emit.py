"""``planner size --emit ENGINE DIR``: write the launch settings and Kubernetes skeletons of a plan into a new
directory (the rendering is :mod:`planner.report.emit`; the flag lists :mod:`planner.io.engine_flags`).

``ENGINE`` is ``vllm``, ``sglang`` or ``dynamo`` (Dynamo with the plan's engine as its backend), or ``auto``: the
plan's engine. ``DIR`` must be absent or an empty directory: an existing directory with anything in it is refused
(nothing is ever replaced or mixed with an earlier output); the files appear all at once or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import InputError

if TYPE_CHECKING:
    from planner.api.size import SizeRun
    from planner.report.emit import Rendered

__all__ = ["EMIT_CHOICES", "Emission", "check_emit", "emit_plan", "prepare_emit", "write_emit"]

EMIT_CHOICES = ("auto", "vllm", "sglang", "dynamo")
"""What ``--emit`` takes as ENGINE: ``auto`` is the plan's engine (:data:`planner.report.emit.EMIT_TARGETS` the others)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Emission:
    """The files of one ``--emit``, rendered and checked, and where they go."""

    directory: Path
    rendered: Rendered

    @property
    def files(self) -> Mapping[str, str]:
        return self.rendered.files

    def doc(self) -> dict[str, Any]:
        """``data.emit`` of the JSON result: the engine, the directory and the files written."""
        return {
            "engine": self.rendered.target,
            "backend": self.rendered.backend,
            "label": self.rendered.label,
            "directory": str(self.directory),
            "files": sorted(self.rendered.files),
            "todo": list(self.rendered.todo),
        }


def _engine_choice(engine: str) -> str:
    choice = engine.strip().lower()
    if choice not in EMIT_CHOICES:
        raise InputError(f"--emit {engine}: ENGINE is one of {', '.join(EMIT_CHOICES)} (auto: the plan's engine)")
    return choice


def check_emit(engine: str, directory: Path, *, outputs: Iterable[Path | None] = (), inputs: Iterable[Path] = ()) -> None:
    """Refuse an ``--emit`` before any sizing: an unknown ENGINE, a DIR that exists and is not an empty directory
    (or cannot be written), or another output of the run (``-o``, ``--html``) inside DIR."""
    from planner.io.output import check_output_dir

    _engine_choice(engine)
    target = check_output_dir(directory, inputs=inputs)
    for out in outputs:
        if out is None:
            continue
        try:
            inside = out.resolve().is_relative_to(target)
        except (OSError, RuntimeError, ValueError):
            inside = False
        if inside:
            raise InputError(f"{out}: inside the --emit directory {directory}: write it elsewhere")


def prepare_emit(run: SizeRun, engine: str, directory: Path) -> Emission:
    """Render and check the files of ``run``'s plan for ``engine`` (nothing is written): one :class:`InputError`
    when the engine cannot run the plan (another engine's profile, a layout it cannot express, no checkpoint)."""
    from planner.io.engine_flags import engine_flags
    from planner.perf.memory import memory_fit
    from planner.report.emit import EMIT_TARGETS, EmitInputs, render

    choice = _engine_choice(engine)
    catalog, workload = run.catalog, run.workload
    plan = run.result.plan.deployment
    target = catalog.engine.id if choice == "auto" else choice
    if target not in EMIT_TARGETS:
        raise InputError(
            f"--emit auto: the plan's engine is {catalog.engine.name} ({catalog.engine.label}); planner emits "
            f"{', '.join(EMIT_TARGETS)}",
            hint="size with --engine vllm or --engine sglang",
        )
    model = catalog.models[workload.model]
    kv_tokens: dict[str, int] = {}
    for p in plan.pools:
        fit = memory_fit(model, catalog.gpus[p.gpu], catalog.engine, p.tp, workload.precision, p.attention_dp, pp=p.pp)
        kv_tokens[p.key] = fit.max_kv_tokens
    longest = max(int(c.input_tokens.p99 + c.output_tokens.p99) for c in workload.classes)
    inp = EmitInputs(
        deployment=plan,
        model=model,
        precision=workload.precision,
        engine=catalog.engine,
        gpus={g: catalog.gpus[g] for g in sorted({p.gpu for p in plan.pools})},
        links={lk: catalog.links[lk] for lk in sorted({p.link for p in plan.pools if p.link is not None}) if lk in catalog.links},
        kv_tokens=kv_tokens,
        longest_request_tokens=longest,
        assumptions=_assumptions(run),
        workload=str(run.options.workload_file) if run.options.workload_file is not None else "flags",
    )
    return Emission(directory=directory, rendered=render(inp, target, engine_flags()))


def write_emit(emission: Emission, *, inputs: Iterable[Path] = ()) -> Path:
    """Write the files into the new directory, whole or not at all (:func:`planner.io.output.write_directory_atomic`)."""
    from planner.io.output import write_directory_atomic

    return write_directory_atomic(
        emission.directory, emission.rendered.files, executable=emission.rendered.executable, inputs=inputs
    )


def emit_plan(run: SizeRun, engine: str, directory: Path) -> Emission:
    """:func:`check_emit`, :func:`prepare_emit` and :func:`write_emit` of a :func:`planner.api.size.run_size` result."""
    check_emit(engine, directory, inputs=run.input_paths)
    emission = prepare_emit(run, engine, directory)
    write_emit(emission, inputs=run.input_paths)
    return emission


def _assumptions(run: SizeRun) -> tuple[str, ...]:
    """What the plan's sizing assumed that no emitted flag sets."""
    w = run.workload
    out: list[str] = []
    if w.speculative is not None:
        s = w.speculative
        out.append(
            f"speculative decoding ({s.method}, {s.draft_tokens} draft tokens, acceptance {s.acceptance_rate:g}): the "
            "plan's decode figures rest on it; configure the engine's speculative decoding (vLLM --speculative-config, "
            "SGLang --speculative-algorithm) with your draft model: not emitted, its settings were not verified here"
        )
    cached = sorted(c.name for c in w.classes if c.prefix_cache is not None)
    if cached:
        out.append(
            f"prefix-cache hits of class(es) {', '.join(cached)}: the engines' prefix caching is on by default (vLLM's "
            "prefix caching, SGLang's radix cache); keep it on, and route repeated prefixes to the same replicas"
        )
    return tuple(out)
