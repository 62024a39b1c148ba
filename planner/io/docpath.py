"""Dotted paths into the workload document (``planner sweep --vary PATH=...``, ``--scenarios``).

A path names one value of the document: segments separated by ``.``, a list element by its index or (for
``classes``) its name, a mapping entry by its key, e.g. ``classes.chat.rate_rps``, ``classes[0].slo.ttft_p99_ms``,
``constraints.max_gpus[h100-sxm]``, ``pricing.discount_frac``, ``hardware.decode_gpus``, ``engine``. A segment in
brackets may hold dots (``classes[my.class]``); ``classes[*]`` is every class. The path is checked against the
workload schema (:class:`planner.io.workload.WorkloadSpec`), not only against a document, so optional fields
the document leaves out can be set (a section on the way is created); what the value must satisfy is checked
when the changed document is validated, as ``planner size`` validates a file.
"""

from __future__ import annotations

import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel

from planner.errors import InputError

__all__ = ["DocPath", "Kind", "Step", "apply_path", "parse_path", "parse_value", "read_path"]

Kind = Literal["number", "integer", "boolean", "string", "strings"]
Step = str | int  # a mapping key (or a class name), a list index; "*" is every element
_SEGMENT = re.compile(r"([^.\[\]]*)((?:\[[^\[\]]*\])*)")
_SLO_KEY = re.compile(r"^(ttft|tpot)_p(50|90|95|99|99\.9)_ms$")
_UNITS = (
    ("_usd_per_month", "USD/month"),
    ("_usd_per_hour", "USD/hour"),
    ("_rps", "requests/s"),
    ("_ms", "ms"),
    ("_frac", "fraction"),
    ("_kw", "kW"),
    ("_kwh", "USD/kWh"),
    ("_years", "years"),
    ("_tokens", "tokens"),
)
NOT_SWEPT = ("calibration",)  # a path relative to the workload's own file: not a value to sweep


@dataclass(frozen=True, slots=True)
class DocPath:
    """A checked path: its text as given, its steps, the kind of value it holds and whether null is allowed."""

    text: str
    steps: tuple[Step, ...]
    kind: Kind
    nullable: bool
    choices: tuple[str, ...] = ()  # a Literal field's values

    @property
    def unit(self) -> str:
        last = str(self.steps[-1])
        if len(self.steps) >= 2 and self.steps[-2] == "max_gpus":
            return "GPUs"
        if last in ("mean", "p50", "p90", "p99", "max") and any(s in ("input_tokens", "output_tokens") for s in self.steps):
            return "tokens"
        if last.endswith("_gpus") and self.kind == "strings":
            return "GPU ids"
        for suffix, unit in _UNITS:
            if last.endswith(suffix):
                return unit
        return ""


def _split(text: str) -> list[str | None]:
    """Raw segments; None for an empty bracket-less segment (an error)."""
    out: list[str | None] = []
    pos = 0
    while pos <= len(text):
        m = _SEGMENT.match(text, pos)
        assert m is not None
        name, brackets = m.group(1), m.group(2)
        if name:
            out.append(name)
        elif not brackets:
            out.append(None)
        out += [b for b in re.findall(r"\[([^\[\]]*)\]", brackets)]
        pos = m.end()
        if pos >= len(text):
            break
        if text[pos] != ".":
            out.append(None)
            break
        pos += 1
        if pos == len(text):
            out.append(None)
    return out


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """The type under Annotated and Optional, and whether None is allowed."""
    nullable = False
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            nullable = nullable or len(args) < len(typing.get_args(tp))
            if len(args) != 1:
                return tp, nullable
            tp = args[0]
        else:
            return tp, nullable


def _leaf(tp: Any) -> tuple[Kind, tuple[str, ...]] | None:
    if tp is bool:
        return "boolean", ()
    if tp is int:
        return "integer", ()
    if tp is float:
        return "number", ()
    if tp is str:
        return "string", ()
    if typing.get_origin(tp) is Literal:
        return "string", tuple(str(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        item, _ = _unwrap(item)
        if item is str:
            return "strings", ()
    return None


def _fields(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def parse_path(text: str, doc: dict[str, Any], where: str = "--vary") -> DocPath:
    """Check ``text`` against the workload schema and ``doc`` (a class named or indexed must be in it);
    one :class:`InputError` naming the path and the segment that does not exist."""
    from planner.io.workload import ClassSpec, SloSpec, WorkloadSpec

    raw = _split(text.strip())
    if not raw or any(s is None or not s.strip() for s in raw):
        raise InputError(f"{where}: {text!r} is not a dotted path (e.g. classes.chat.rate_rps, classes[0].slo.ttft_p99_ms)")
    segs = [s.strip() for s in raw if s is not None]
    if segs[0] in NOT_SWEPT:
        raise InputError(f"{where} {text}: {segs[0]} names a file relative to the workload; it cannot be swept")
    tp: Any = WorkloadSpec
    nullable = False
    steps: list[Step] = []
    node: Any = doc
    done = ""
    for seg in segs:
        here = f"{done}.{seg}" if done else seg
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp is SloSpec:
                if not _SLO_KEY.match(seg):
                    raise InputError(
                        f"{where}: {text}: {here} is not a field of the workload (an SLO key is ttft_pNN_ms or tpot_pNN_ms, "
                        "NN in 50, 90, 95, 99, 99.9)"
                    )
                tp, nullable = float, False
            elif seg not in tp.model_fields:
                what = "the workload" if tp is WorkloadSpec else (done or "the workload")
                raise InputError(
                    f"{where}: {text}: {here} is not a field of the workload schema",
                    hint=f"fields of {what}: {_fields(tp)}",
                )
            else:
                tp, nullable = _unwrap(tp.model_fields[seg].annotation)
            steps.append(seg)
            node = node.get(seg) if isinstance(node, dict) else None
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            item, nullable = _unwrap(item)
            if seg == "*":
                steps.append("*")
                node = None
            elif re.fullmatch(r"-?\d+", seg):
                index = int(seg)
                n = len(node) if isinstance(node, list) else 0
                if not 0 <= index < n:
                    raise InputError(f"{where}: {text}: {done}[{index}]: the workload has {n} element(s) there (index from 0)")
                steps.append(index)
                node = node[index]
            elif item is ClassSpec:
                names = [c.get("name") for c in node] if isinstance(node, list) else []
                if seg not in names:
                    raise InputError(
                        f"{where}: {text}: the workload has no class named {seg!r}",
                        hint=f"classes: {', '.join(str(n) for n in names)} (or an index from 0, or [*] for every class)",
                    )
                steps.append(seg)
                node = node[names.index(seg)]
            else:
                raise InputError(f"{where}: {text}: {done} is a list: give an index from 0 (or [*]), not {seg!r}")
            tp = item
        elif typing.get_origin(tp) is dict:
            _, value = typing.get_args(tp)
            tp, nullable = _unwrap(value)
            steps.append(seg)
            node = node.get(seg) if isinstance(node, dict) else None
        else:
            raise InputError(f"{where}: {text}: {done} holds a value, not fields (nothing under it is {seg!r})")
        done = f"{done}[{steps[-1]}]" if isinstance(steps[-1], int) else here
    leaf = _leaf(tp)
    if leaf is None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = "ttft_p99_ms, tpot_p99_ms, ..." if tp is SloSpec else _fields(tp)
            raise InputError(f"{where}: {text} is a section, not a value", hint=f"name one of its fields: {fields}")
        raise InputError(f"{where}: {text}: a list or table of values cannot be swept; name one of its values")
    kind, choices = leaf
    return DocPath(text=text.strip(), steps=tuple(steps), kind=kind, nullable=nullable, choices=choices)


def parse_value(path: DocPath, text: str, where: str = "--vary") -> Any:
    """One value given as text for ``path`` (``null`` for an optional field; ``a|b`` for a list of ids)."""
    t = text.strip()
    if t == "null" or t == "~":
        if not path.nullable:
            raise InputError(f"{where}: {path.text}: the field is not optional (null is not a value of it)")
        return None
    if path.kind in ("number", "integer"):
        try:
            value = float(t)
        except ValueError:
            raise InputError(f"{where}: {path.text}: {t!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"{where}: {path.text}: {t!r} is not a finite number")
        if path.kind == "integer":
            if value != int(value):
                raise InputError(f"{where}: {path.text}: {t!r} is not a whole number")
            return int(value)
        return value
    if path.kind == "boolean":
        if t.lower() not in ("true", "false"):
            raise InputError(f"{where}: {path.text}: {t!r}: use true or false")
        return t.lower() == "true"
    if not t:
        raise InputError(f"{where}: {path.text}: empty value")
    if path.kind == "strings":
        items = [s.strip() for s in t.split("|")]
        if any(not s for s in items):
            raise InputError(f"{where}: {path.text}: {t!r}: an empty id in the list (ids are separated by |)")
        return tuple(items)
    return t


def coerce_value(path: DocPath, value: Any, where: str) -> Any:
    """A value read from a YAML scenario file (already typed) for ``path``; text is parsed as on the command line."""
    if isinstance(value, str):
        return parse_value(path, value, where)
    if value is None:
        return parse_value(path, "null", where)
    if path.kind in ("number", "integer") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return parse_value(path, repr(value), where)
    if path.kind == "boolean" and isinstance(value, bool):
        return value
    if path.kind == "strings" and isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    raise InputError(f"{where}: {path.text}: {value!r} is not a {path.kind.replace('strings', 'list of ids')} value")


def _targets(node: Any, steps: tuple[Step, ...]) -> list[tuple[Any, Step]]:
    """(container, key) pairs the path lands on, creating sections on the way."""
    step, rest = steps[0], steps[1:]
    items: list[Step]
    if isinstance(node, list):
        if step == "*":
            items = [*range(len(node))]
        elif isinstance(step, int):
            items = [step]
        else:
            items = [i for i, c in enumerate(node) if isinstance(c, dict) and c.get("name") == step]
            if not items:
                raise InputError(f"no class named {step!r}")
    elif isinstance(node, dict):
        items = [step]
    else:
        raise InputError(f"{step!r}: not a section")
    if not rest:
        return [(node, k) for k in items]
    out: list[tuple[Any, Step]] = []
    for k in items:
        if isinstance(node, dict) and (k not in node or node[k] is None):
            node[k] = {}
        out += _targets(node[k], rest)  # type: ignore[index]
    return out


def apply_path(doc: dict[str, Any], path: DocPath, value: Any) -> None:
    """Set ``path`` to ``value`` in ``doc`` (in place); a list of ids is written as a list."""
    for container, key in _targets(doc, path.steps):
        container[key] = list(value) if isinstance(value, tuple) else value


def read_path(doc: dict[str, Any], path: DocPath) -> Any:
    """The document's value at ``path`` (the first class for ``[*]``), None where it is not set."""
    node: Any = doc
    for step in path.steps:
        if isinstance(node, list):
            if step == "*":
                step = 0
            if isinstance(step, int):
                node = node[step] if 0 <= step < len(node) else None
            else:
                node = next((c for c in node if isinstance(c, dict) and c.get("name") == step), None)
        elif isinstance(node, dict):
            node = node.get(step)
        else:
            return None
    return tuple(node) if isinstance(node, list) else node
