"""The readings point at code that exists: every `file.py:name` and `test_file.py::test_name` in
docs/*.md and README.md names a file of this repository and a top-level function, class or
assignment in it (or Class.member). Paths are from the repository root; a test file named without
a folder is looked up at the top level, then in tests/. Read with ast: nothing is imported."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
REF = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.py)(::?)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def references(text):
    """(file, separator, name) of every reference in a markdown text."""
    return REF.findall(text)


def names_in(path):
    """Top-level functions, classes and assigned names of a file, and Class.member for the methods,
    nested classes and attributes (dataclass fields too) of its classes."""
    def assigned(node):
        if isinstance(node, ast.Assign):
            return [t.id for t in node.targets if isinstance(t, ast.Name)]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            return [node.target.id]
        return []
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    names = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        names.update([node.name] if isinstance(node, defs) else assigned(node))
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                names.update(f"{node.name}.{n}" for n in ([member.name] if isinstance(member, defs) else assigned(member)))
    return names


def locate(file):
    """The file a reference names, or None."""
    candidates = [ROOT / file]
    if "/" not in file and file.startswith("test_"):
        candidates.append(ROOT / "tests" / file)
    return next((p for p in candidates if p.is_file()), None)


def problem(file, sep, name):
    """Why a reference is wrong, or None when it points at code that exists."""
    path = locate(file)
    if path is None:
        return f"no file {file}"
    if Path(file).name.startswith("test_") != (sep == "::"):
        return "write tests as test_file.py::test_name and code as file.py:name"
    if name not in names_in(path):
        return f"{path.relative_to(ROOT)} has no top-level {name}"
    return None


@pytest.mark.parametrize("md", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_reference_exists(md):
    broken = [f"{f}{s}{n}: {why}" for f, s, n in references(md.read_text()) if (why := problem(f, s, n))]
    assert not broken, f"{md.relative_to(ROOT)}:\n  " + "\n  ".join(broken)


def test_the_readings_do_point_at_code():
    """If the pattern stopped matching, the test above would pass on nothing."""
    readings = sorted((ROOT / "docs").glob("[0-9]-*.md"))
    assert readings, "no readings in docs/"
    for md in readings:
        assert len(references(md.read_text())) >= 4, f"{md.name} should point at the code it explains"


def test_the_checker_itself():
    text = ("see `mask2flow.py:Mask2Flow.extract`, mask2flow.py:Config.start and "
            "test_mask2flow.py::test_straight_path. Run `python train.py --data demo`: it trains.")
    refs = references(text)
    assert refs == [("mask2flow.py", ":", "Mask2Flow.extract"), ("mask2flow.py", ":", "Config.start"),
                    ("test_mask2flow.py", "::", "test_straight_path")]
    assert all(problem(*r) is None for r in refs)
    assert "has no top-level" in problem("mask2flow.py", ":", "NoSuchThing")
    assert "has no top-level" in problem("mask2flow.py", ":", "Mask2Flow.no_such_method")
    assert "no file" in problem("no_such_file.py", ":", "main")
    assert "write tests as" in problem("test_mask2flow.py", ":", "test_straight_path")
    assert references("docs/research/figures.py:delete_insert") == [("docs/research/figures.py", ":", "delete_insert")]
