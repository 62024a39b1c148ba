"""A study's run directory (``--run-dir DIR``): its manifest and one file per finished point.

Layout::

    DIR/manifest.json          {"format": "planner-run-dir", "version": 1, "points": N,
                                "study_sha256": H, "study": {...}}
    DIR/points/<key>.json      {"key": KEY, "row": {...}}  (one per finished point)

``study`` is what the study's result depends on (its inputs, the catalog's fingerprint, the planner version) and
``H`` the SHA-256 of its canonical JSON; a directory holding another study is refused, so that points of two
studies never mix. Each point file is written whole or not at all (a temporary file in ``points/``, then a rename),
as soon as its point finishes; a point file that does not parse or names another key is treated as missing (it is
computed again), and temporary files a killed run left are removed when the directory is opened again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.io.output import write_text_atomic

__all__ = ["FORMAT", "MANIFEST", "VERSION", "RunDir", "open_run_dir", "study_sha256"]

FORMAT = "planner-run-dir"
VERSION = 1
MANIFEST = "manifest.json"
_POINTS = "points"
_HINT = "give this study a directory of its own, or remove the directory to start it over"


def canonical_json(doc: Any) -> str:
    """One text for one document: keys sorted, no spaces (``NaN``/``Infinity`` kept as Python writes them)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def study_sha256(study: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(study).encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class RunDir:
    """An opened run directory whose manifest is this study's."""

    path: Path
    points: Path

    def load(self, key: str) -> dict[str, Any] | None:
        """The row stored for ``key``, or None (not finished, or a file that is not whole)."""
        try:
            text = (self.points / f"{key}.json").read_text(encoding="utf-8")
            doc = json.loads(text)
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("row"), dict):
            return None
        row: dict[str, Any] = doc["row"]
        return row

    def save(self, key: str, row: Mapping[str, Any]) -> None:
        """Store ``row`` as ``key``'s, atomically (a reader sees the whole file or none)."""
        text = json.dumps({"key": key, "row": row}, indent=1) + "\n"  # the row's own key order, kept
        target = self.points / f"{key}.json"
        tmp = self.points / f".{key}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise InputError(f"--run-dir {self.path}: cannot write {target.name}: {exc.strerror}") from None
            raise

    def finished(self) -> int:
        """Point files present (whole or not)."""
        try:
            return sum(1 for p in self.points.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        except OSError:
            return 0


def _writer_alive(name: str) -> bool:
    """Whether the process that named a temporary file ``.<key>.<pid>.tmp`` still runs (then it is not stale)."""
    pid = name.rsplit(".", 2)[-2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _differences(old: Any, new: Mapping[str, Any]) -> list[str]:
    if not isinstance(old, Mapping):
        return ["everything"]
    keys = sorted(set(old) | set(new))
    return [k for k in keys if canonical_json(old.get(k)) != canonical_json(new.get(k))]


def open_run_dir(path: Path, study: Mapping[str, Any], points: int) -> RunDir:
    """Open ``path`` for ``study`` (``points`` points): create it (absent or empty) with its manifest, or check that
    the manifest there is this study's. Refused (one :class:`InputError`): a path that is not a directory, a
    directory that holds other files and no manifest, a manifest that is not one, or another study's."""
    where = f"--run-dir {path}"
    digest = study_sha256(study)
    manifest = path / MANIFEST
    if path.exists() and not path.is_dir():
        raise InputError(f"{where}: not a directory")
    if manifest.exists():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{manifest}: not a planner run-directory manifest ({exc})", hint=_HINT) from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InputError(f"{manifest}: not a planner run-directory manifest (format is not {FORMAT!r})", hint=_HINT)
        if doc.get("version") != VERSION:
            raise InputError(f"{manifest}: run-directory version {doc.get('version')!r}; this planner writes {VERSION}")
        if doc.get("study_sha256") != digest:
            differ = ", ".join(_differences(doc.get("study"), study)) or "its study_sha256"
            raise InputError(
                f"{where} holds another study (sha256 {str(doc.get('study_sha256'))[:12]}, this one {digest[:12]}; "
                f"they differ in: {differ})",
                hint=_HINT,
            )
    else:
        try:
            entries = list(path.iterdir()) if path.exists() else []
        except OSError as exc:
            raise InputError(f"{where}: cannot read: {exc.strerror}") from None
        if entries:
            raise InputError(f"{where}: not empty and not a planner run directory (no {MANIFEST})", hint=_HINT)
        doc = {"format": FORMAT, "version": VERSION, "points": points, "study_sha256": digest, "study": dict(study)}
        write_text_atomic(manifest, json.dumps(doc, sort_keys=True, indent=1) + "\n")
    run = RunDir(path=path, points=path / _POINTS)
    try:
        run.points.mkdir(exist_ok=True)
        for stale in run.points.glob(".*.tmp"):  # left by a run killed while it wrote a point
            if not _writer_alive(stale.name):
                with contextlib.suppress(OSError):
                    stale.unlink()
    except OSError as exc:
        raise InputError(f"{where}: cannot write: {exc.strerror}") from None
    return run
