"""Tests of the course readings (docs/) and the README: every code reference points at code that exists
(read with ast: nothing is imported), every link resolves, every figure is drawn by docs/figures.py and
used, every number of a reading is one that docs/results.md generates from the evidence, and the readings
and the evening path keep to their size. The analyses themselves: test_analysis.py; the results page:
test_results.py."""

import ast
import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
import torch

from mask2flow import CONFIGS, Mask2Flow

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESEARCH = DOCS / "research"  # results.py and the evidence it reads
READINGS = sorted(DOCS.glob("[0-9]-*.md"))
MARKDOWN = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
REF = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.py)(::?)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


results = load_module(RESEARCH / "results.py", "docs_results")

# --- the readings point at code that exists ---


def references(text):
    """(file, separator, name) of every `file.py:name` or `test_file.py::test_name` in a markdown text."""
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


def problem(file, sep, name):
    """Why a reference is wrong, or None when it points at code that exists. Paths are from the
    repository's root; a test file named without a folder is looked up at the top, then in tests/."""
    candidates = [ROOT / file] + ([ROOT / "tests" / file] if "/" not in file and file.startswith("test_") else [])
    path = next((p for p in candidates if p.is_file()), None)
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


def test_the_reference_checker_itself():
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
    assert references("docs/figures.py:cmd_di") == [("docs/figures.py", ":", "cmd_di")]


def test_readings_exist_and_are_listed_in_order():
    assert len(READINGS) == 6, [p.name for p in READINGS]
    index = (DOCS / "README.md").read_text()
    positions = [index.find(f"]({p.name})") for p in READINGS]
    assert all(i >= 0 for i in positions), "docs/README.md must link every reading"
    assert positions == sorted(positions), "docs/README.md must list the readings in order"


@pytest.mark.parametrize("reading", READINGS, ids=lambda p: p.name)
def test_each_reading_is_tied_to_code_short_and_has_exercises(reading):
    text = reading.read_text()
    assert len(references(text)) >= 4, f"{reading.name} should point at the code it explains"
    assert "## Exercises" in text and "## Answers" in text
    assert text.index("## Exercises") < text.index("## Answers")
    words = len(text.split())
    assert words <= 1500, f"{reading.name} has {words} words: a reading is one evening"


@pytest.mark.parametrize("reading", READINGS, ids=lambda p: p.name)
def test_readings_are_no_lab_notebook(reading):
    """No commit hashes, CPU hours or git archaeology: a reading teaches the method."""
    text = reading.read_text()
    assert not re.search(r"git show|\b(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b|CPU hours|hours on|former corpus|former shipped", text), \
        reading.name

# --- every number a reading states is one that results.md generates ---

MEASURED = re.compile(r"(?<![\w.])[−+-]?(\d+(?:\.\d+)?)(?= ?(?:dB|%| points)| ± )")  # 3.2 dB, 37.4%, 0.77 ± 0.1
DEFINED = {  # numbers with a unit that define or cite something, rather than measure it, with why
    "1-task.md": {"5": "exercise 2: a level difference"},
    "2-signal.md": {"24": "a worked example", "40": "a worked example", "80": "the colour range"},
    "3-masking.md": {"30": "the waveform loss's cap"},
    "4-flow-matching.md": {},
    "5-network.md": {},
    "6-experiments.md": {"28": "the paper's 25–28%", "50": "exercise 6's answer"},
}


@pytest.mark.parametrize("reading", READINGS, ids=lambda p: p.name)
def test_every_number_of_a_reading_is_generated(reading):
    """A reading's measured numbers (those with dB, %, points or a ± interval) are all on docs/results.md,
    which test_results.py checks against the evidence: none is typed in. DEFINED lists the few that define
    or cite rather than measure."""
    shown = set(re.findall(r"\d+(?:\.\d+)?", results.build()))
    missing = [n for n in MEASURED.findall(reading.read_text()) if n not in shown and n not in DEFINED[reading.name]]
    assert not missing, f"{reading.name} states numbers results.md does not give: {missing}"
    assert MEASURED.findall("a 3.2 dB gain, 37.4% missing, 0.77 ± 0.10 dB, step 2000") == ["3.2", "37.4", "0.77", "0.10"]


def test_links_resolve():
    """Links to markdown, code and figures exist, and every results.md#anchor is a heading that
    docs/research/results.py writes."""
    headings = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", results.build(), flags=re.M)}
    for md in MARKDOWN:
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text()):
            if target.startswith("http"):
                continue
            file, _, anchor = target.partition("#")
            if file:
                assert (md.parent / file).exists(), f"{md.name}: broken link {target}"
            if Path(file).name == "results.md" and anchor:
                assert anchor in headings, f"{md.name}: results.py writes no heading #{anchor}"


def test_every_figure_is_drawn_by_a_figure_script_and_used():
    pngs = {p.name for p in DOCS.glob("*.png")}
    text = "\n".join(p.read_text() for p in MARKDOWN) + results.build()
    scripts = (DOCS / "figures.py", DOCS / "paper_figures.py")  # the readings'; the paper's Figures 4 and 5
    drawn = {name for s in scripts for name in re.findall(r'"(\w+\.png)"', s.read_text())}
    assert pngs == drawn, f"docs/ holds {sorted(pngs)}, docs/figures.py and paper_figures.py draw {sorted(drawn)}"
    assert all(name in text for name in pngs), "a figure no reading or results page uses"

# --- the evening path of docs/README.md ---


def test_the_evening_path_is_timed_and_fits_an_evening():
    """docs/README.md opens with the path: each step a command and its measured minutes, 45 in all."""
    text = (DOCS / "README.md").read_text()
    path = text.split("## ")[1]
    minutes = [float(m) for m in re.findall(r"\|\s*([\d.]+) min\b[^|]*\|", path)]  # "| 2.9 min (CPU 0.8) |"
    assert len(minutes) >= 6, "each step of the evening path gives its time"
    assert sum(minutes) <= 45, f"the evening path takes {sum(minutes)} min"
    for command in ("sample.py", "docs/figures.py spectrograms", "analysis.py ceilings", "analysis.py di",
                    "overfits_one_batch", "eval.py"):
        assert command in path, f"the evening path has no step with {command}"

# --- the figures draw, and the README's preset table ---


def test_figures_draw_from_a_checkpoint(tmp_path):
    pytest.importorskip("matplotlib", reason="the figures need matplotlib (requirements-docs.txt)")
    from test_data import make_librimix
    make_librimix(tmp_path / "LibriMix", "test", 2)
    torch.manual_seed(0)
    model = Mask2Flow(CONFIGS["tiny"])
    ckpt = tmp_path / "tiny.pt"
    torch.save({"config": dataclasses.asdict(model.cfg), "model": model.state_dict(), "ema": model.state_dict(),
                "stage": 2, "step": 0, "best_val": 0.0, "data": {}}, ckpt)
    figures = load_module(DOCS / "figures.py", "docs_figures")
    figures.main(["spectrograms", "--ckpt", str(ckpt), "--data", str(tmp_path / "LibriMix"), "--out", str(tmp_path)])
    figures.main(["di", "--evidence", str(RESEARCH / "evidence" / "real310" / "di.json"), "--out", str(tmp_path)])
    for name in ("spectrograms", "oversuppression", "di"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_readme_preset_sizes_are_what_mask2flow_prints():
    """README's preset table: the parameter counts `python mask2flow.py` prints, to the digits shown."""
    from mask2flow import count_parameters
    readme = (ROOT / "README.md").read_text()
    for name, cfg in CONFIGS.items():
        row = re.search(rf"^\| `{name}`[^|]*\|([^\n]*)$", readme, re.M)
        assert row, f"README has no row for the {name} preset"
        shown = [c.strip().rstrip("M") for c in row.group(1).strip(" |").split("|")]
        model = Mask2Flow(cfg)
        parts = [model] + [getattr(model, p) for p in ("speaker", "masker", "dit")]
        for text, part in zip(shown, parts):
            digits = len(text.split(".")[1]) if "." in text else 0
            assert float(text) == round(count_parameters(part) / 1e6, digits), (name, text)
