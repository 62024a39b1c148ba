"""Safe YAML loading (planner.io.yamlio): duplicate keys, object tags, alias bombs, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.errors import InputError
from planner.io import yamlio


def test_loads_plain_document() -> None:
    assert yamlio.loads("a: 1\nb: [x, y]\n", "doc.yaml") == {"a": 1, "b": ["x", "y"]}


def test_duplicate_key_names_file_and_line() -> None:
    text = "schema_version: 1\ngpus:\n  a: 1\n  b: 2\n  a: 3\n"
    with pytest.raises(InputError) as info:
        yamlio.loads(text, "gpus.yaml")
    msg = info.value.message
    assert msg.startswith("gpus.yaml:5:"), msg
    assert "duplicate key 'a'" in msg


def test_duplicate_key_in_file(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("x: 1\ny: 2\nx: 3\n")
    with pytest.raises(InputError) as info:
        yamlio.load_file(path)
    assert f"{path}:3:" in info.value.message
    assert "duplicate key" in info.value.message


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object:os.system {}\n",
        "x: !!python/object/apply:os.system ['echo hi']\n",
        "x: !!python/name:os.system\n",
    ],
)
def test_python_tags_rejected(text: str) -> None:
    with pytest.raises(InputError) as info:
        yamlio.loads(text, "evil.yaml")
    assert info.value.message.startswith("evil.yaml:1:"), info.value.message
    assert "python" in info.value.message


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_alias_bomb_rejected() -> None:
    with pytest.raises(InputError) as info:
        yamlio.loads(BILLION_LAUGHS, "bomb.yaml")
    msg = info.value.message
    assert msg.startswith("bomb.yaml:"), msg
    assert "alias" in msg


def test_many_aliases_rejected() -> None:
    text = "base: &x [1, 2]\nrefs: [" + ", ".join(["*x"] * 150) + "]\n"
    with pytest.raises(InputError) as info:
        yamlio.loads(text, "many.yaml")
    assert info.value.message.startswith("many.yaml:2:"), info.value.message
    assert "alias" in info.value.message


def test_a_few_aliases_are_fine() -> None:
    assert yamlio.loads("a: &x 1\nb: *x\nc: *x\n", "ok.yaml") == {"a": 1, "b": 1, "c": 1}


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(InputError) as info:
        yamlio.load_file(path)
    assert str(path) in info.value.message
    assert "no such file" in info.value.message


def test_binary_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "blob.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError) as info:
        yamlio.load_file(path)
    assert str(path) in info.value.message
    assert "binary" in info.value.message


def test_non_utf8_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError) as info:
        yamlio.load_file(path)
    assert str(path) in info.value.message


def test_directory_names_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        yamlio.load_file(tmp_path)
    assert str(tmp_path) in info.value.message


def test_syntax_error_has_line() -> None:
    with pytest.raises(InputError) as info:
        yamlio.loads("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml")
    assert info.value.message.startswith("bad.yaml:"), info.value.message


def test_find_line() -> None:
    text = "top:\n  items:\n    - a: 1\n    - a: 2\n      b: 3\n"
    assert yamlio.find_line(text, ("top",)) == 1
    assert yamlio.find_line(text, ("top", "items")) == 2
    assert yamlio.find_line(text, ("top", "items", 1, "b")) == 5
