"""Safe YAML loading that rejects duplicate keys and oversized, deeply nested or alias-bomb documents.

Plain scalars resolve as in YAML 1.2's core schema, not YAML 1.1's: only ``true``/``false`` are booleans
(``yes``, ``no``, ``on``, ``off`` are strings), an integer is decimal digits without a leading zero
(``010``, ``0x10``, ``0o10``, ``1_000`` and sexagesimal ``1:30`` are strings, which a numeric field
refuses), and a float may have an exponent without a dot or a sign (``1e3`` is 1000.0). Merge keys
(``<<: *anchor``) are supported; keys written in the mapping itself override merged ones. Documents nest
at most :data:`MAX_DEPTH` levels of mappings and sequences.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from planner.errors import InputError
from planner.io.sources import MAX_DOCUMENT_BYTES, read_source

MAX_ALIASES = 100
MAX_DEPTH = 64  # nesting levels of mappings and sequences (planner documents use fewer than 10)

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_YAML11 = (_BOOL, _INT, _FLOAT, "tag:yaml.org,2002:value")  # resolvers replaced by the core schema's


def _core_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    kept: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
        rest = [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML11]
        if rest:
            kept[first] = rest
    core = (
        (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        (_INT, r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
        (
            _FLOAT,
            r"^(?:[-+]?(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            "-+0123456789.",
        ),
    )
    for tag, pattern, firsts in core:
        regexp = re.compile(pattern)
        for first in firsts:
            kept.setdefault(first, []).append((tag, regexp))
    return kept


def _check_keys(loader: Any, node: yaml.MappingNode, deep: bool) -> None:
    """Refuse a key written twice in ``node`` itself (merged keys may be overridden), then expand merges."""
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE:
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key: the constructor names it
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader (no object construction) that refuses duplicate mapping keys, resolves plain scalars by
    YAML 1.2's core schema and limits nesting and aliases."""

    yaml_implicit_resolvers = _core_resolvers()

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases_seen = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases_seen += 1
            if self._aliases_seen > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {MAX_ALIASES} aliases (possible alias bomb)", mark
                )
        elif self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            if self._depth >= MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.constructor.ConstructorError(
                    None, None, f"nested too deeply (more than {MAX_DEPTH} levels of mappings and lists)", mark
                )
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _check_keys(self, node, deep)
        return super().construct_mapping(node, deep=deep)


MAX_EXPANDED_NODES = 1_000_000


class _RecursiveAlias(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node


def _expanded_nodes(root: yaml.Node) -> int:
    """Nodes the document has once every alias is expanded (anchors shared, so memoized by id).

    Raises :class:`_RecursiveAlias` for an alias inside its own anchor (``a: &a [*a]``): such a
    document has no finite expansion, and walking it would never end."""
    memo: dict[int, int] = {}
    open_ids: set[int] = set()  # nodes entered but not finished: the ancestors of the node popped
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in memo:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if done:
            open_ids.discard(id(node))
        elif children:
            if id(node) in open_ids:
                raise _RecursiveAlias(node)
            open_ids.add(id(node))
        if done or not children:
            memo[id(node)] = 1 + sum(memo.get(id(c), 1) for c in children)
            if memo[id(node)] > MAX_EXPANDED_NODES:
                return memo[id(node)]
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in memo)
    return memo[id(root)]


def loads(text: str, origin: str) -> Any:
    """Parse one YAML document; errors name ``origin`` and the line."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{origin}: document larger than {MAX_DOCUMENT_BYTES // 2**20} MiB")
    try:
        loader = _UniqueKeyLoader(text)
        try:
            root = loader.get_single_node()  # type: ignore[no-untyped-call]
            if root is None:
                return None
            try:
                expanded = _expanded_nodes(root)
            except _RecursiveAlias as exc:
                line = exc.node.start_mark.line + 1
                raise InputError(f"{origin}:{line}: recursive alias (an anchor used inside itself)") from None
            if expanded > MAX_EXPANDED_NODES:
                raise InputError(f"{origin}: aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (alias bomb?)")
            return loader.construct_document(root)  # type: ignore[no-untyped-call]
        finally:
            loader.dispose()  # type: ignore[no-untyped-call]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"{origin}{where}: {problem}") from None
    except yaml.reader.ReaderError as exc:  # a control character: name its line, in one line
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise InputError(f"{origin}:{line}: invalid YAML: control character U+{char:04X} is not allowed") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{origin}: invalid YAML: {first}") from None


def read_text(path: Path) -> str:
    """Read a UTF-8 text file (once per run: :func:`planner.io.sources.read_source`)."""
    return read_source(path).text


def load_file(path: Path) -> Any:
    return loads(read_text(path), str(path))


_FastBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TrustedLoader(_FastBase):  # type: ignore[misc,valid-type]
    """libyaml's safe loader (ten times faster than the pure-Python one; the built-in catalogs'
    measured curves make them large), still refusing duplicate keys. Only for files shipped with
    planner: user documents go through :func:`loads`, whose alias limits and messages are checked."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _check_keys(self, node, deep)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def loads_shipped(text: str, origin: str) -> Any:
    """Parse a YAML document shipped with planner (the built-in catalogs) with libyaml."""
    try:
        return yaml.load(text, Loader=_TrustedLoader)
    except yaml.YAMLError:
        return loads(text, origin)  # the pure-Python loader names the line


def find_line(text: str, dotted: tuple[str | int, ...]) -> int | None:
    """1-based line of the node at ``dotted`` (keys and list indices), or None if absent."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in dotted:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def dumps(data: Any) -> str:
    """Deterministic YAML: block style, keys in insertion order, unicode kept."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
