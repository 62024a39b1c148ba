"""The launch flags each serving engine defines at one release (``catalogs/engine_flags.yaml``): what
``planner size --emit`` may write into a launch command, and what the tests check every emitted file against.

The file holds facts read from the released packages (the option strings of each program's argument parser and
the accepted values of the few flags planner gives a value), each engine with its source: repository, tag, the
package file and its sha256, the date read. It is a built-in file: ``--catalog-dir`` overlays do not extend it
(a flag list is a statement about a release, not a site setting).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from planner.errors import CatalogError
from planner.io.catalog import builtin_catalog_dir
from planner.io.schemas import Strict
from planner.io.yamlio import loads_shipped, read_text

__all__ = ["ENGINE_FLAGS_FILE", "EngineFlags", "FlagProgram", "GraphFields", "engine_flags", "load_engine_flags"]

ENGINE_FLAGS_FILE = "engine_flags.yaml"


class _Program(Strict):
    command: list[str] = Field(min_length=1)
    positional: list[str] = Field(default_factory=list)
    note: str | None = None
    values: dict[str, list[str]] = Field(default_factory=dict)
    flags: list[str] = Field(min_length=1)


class _KvTransfer(Strict):
    keys: list[str]
    kv_role: list[str]
    kv_connector: list[str]


class _Graph(Strict):
    api_version: str
    kind: str
    service_fields: list[str]
    component_types: list[str]
    sub_component_types: list[str]
    resource_fields: list[str]
    pod_fields: list[str]
    container_fields: list[str]


class _Source(Strict):
    repository: str
    tag: str
    package: str
    paths: list[str]
    read: str


class _Engine(Strict):
    name: str
    version: str
    backends: dict[str, str] = Field(default_factory=dict)
    source: _Source
    programs: dict[str, _Program] = Field(min_length=1)
    kv_transfer_config: _KvTransfer | None = None
    env: list[str] = Field(default_factory=list)
    graph: _Graph | None = None


class _File(Strict):
    schema_version: int
    engines: dict[str, _Engine] = Field(min_length=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagProgram:
    """One program an engine is launched with (``vllm serve``, ``python3 -m sglang.launch_server``, ...) and the
    flags its parser defines at the release."""

    name: str
    command: tuple[str, ...]
    flags: frozenset[str]
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # flag -> accepted values
    positional: tuple[str, ...] = ()

    def undocumented(self, args: tuple[str, ...] | list[str]) -> list[str]:
        """The option strings in ``args`` this program does not define, and ``flag value`` pairs whose value is
        not one the flag accepts (for the flags whose values the file lists)."""
        bad = []
        for i, arg in enumerate(args):
            if not arg.startswith("-") or _is_number(arg):
                continue
            name = arg.split("=", 1)[0]
            if name not in self.flags:
                bad.append(name)
            elif name in self.values and i + 1 < len(args) and args[i + 1] not in self.values[name]:
                bad.append(f"{name} {args[i + 1]}")
        return bad


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphFields:
    """The fields of Dynamo's DynamoGraphDeployment that planner writes."""

    api_version: str
    kind: str
    service_fields: frozenset[str]
    component_types: frozenset[str]
    sub_component_types: frozenset[str]
    resource_fields: frozenset[str]
    pod_fields: frozenset[str]
    container_fields: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineFlags:
    """An engine at one release: its programs and flags, where they were read."""

    id: str
    name: str
    version: str
    source: Mapping[str, str]
    programs: Mapping[str, FlagProgram]
    backends: Mapping[str, str] = field(default_factory=dict)  # Dynamo: backend engine -> the version it pins
    kv_roles: frozenset[str] = frozenset()
    kv_connectors: frozenset[str] = frozenset()
    kv_keys: frozenset[str] = frozenset()
    env: frozenset[str] = frozenset()
    graph: GraphFields | None = None

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def source_line(self) -> str:
        """``vllm-project/vllm v0.12.0, read 2026-12-02`` (the package file and its sha256 are in the catalog)."""
        s = self.source
        return f"{s['repository']} {s['tag']}, read {s['read']}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _convert(engine_id: str, raw: _Engine) -> EngineFlags:
    programs = {
        name: FlagProgram(
            name=name,
            command=tuple(p.command),
            flags=frozenset(p.flags),
            values={k: tuple(v) for k, v in sorted(p.values.items())},
            positional=tuple(p.positional),
        )
        for name, p in sorted(raw.programs.items())
    }
    for name, p in programs.items():
        missing = sorted(set(p.values) - p.flags)
        if missing:
            raise CatalogError(f"{ENGINE_FLAGS_FILE}: engines.{engine_id}.programs.{name}: values for unlisted flags {missing}")
    kv = raw.kv_transfer_config
    g = raw.graph
    return EngineFlags(
        id=engine_id,
        name=raw.name,
        version=raw.version,
        source={k: (", ".join(v) if isinstance(v, list) else str(v)) for k, v in raw.source.model_dump().items()},
        programs=programs,
        backends=dict(sorted(raw.backends.items())),
        kv_roles=frozenset(kv.kv_role) if kv else frozenset(),
        kv_connectors=frozenset(kv.kv_connector) if kv else frozenset(),
        kv_keys=frozenset(kv.keys) if kv else frozenset(),
        env=frozenset(raw.env),
        graph=None
        if g is None
        else GraphFields(
            api_version=g.api_version,
            kind=g.kind,
            service_fields=frozenset(g.service_fields),
            component_types=frozenset(g.component_types),
            sub_component_types=frozenset(g.sub_component_types),
            resource_fields=frozenset(g.resource_fields),
            pod_fields=frozenset(g.pod_fields),
            container_fields=frozenset(g.container_fields),
        ),
    )


def load_engine_flags(path: Path | None = None) -> dict[str, EngineFlags]:
    """Every engine of the flag catalog (the built-in ``catalogs/engine_flags.yaml`` unless ``path``), by id."""
    where = path if path is not None else builtin_catalog_dir() / ENGINE_FLAGS_FILE
    data: Any = loads_shipped(read_text(where), str(where))
    try:
        doc = _File.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        raise CatalogError(f"{where}: {loc}: {first['msg']}") from None
    for eid, eng in doc.engines.items():
        for pname, prog in eng.programs.items():
            bad = [f for f in prog.flags if not f.startswith("-")]
            if bad:
                raise CatalogError(f"{where}: engines.{eid}.programs.{pname}.flags: not option strings: {bad[:3]}")
    return {eid: _convert(eid, eng) for eid, eng in sorted(doc.engines.items())}


@functools.cache
def engine_flags() -> dict[str, EngineFlags]:
    """:func:`load_engine_flags` of the built-in file, read once."""
    return load_engine_flags()
