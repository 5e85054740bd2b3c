"""Tests of docs/research/results.py: docs/results.md and the README's results block are built from the
evidence in docs/research/evidence alone; a claim "A beats B" is a result only when the paired,
mixture-clustered interval of A - B excludes zero."""

import json

import numpy as np
import pytest
import torch
from scipy.stats import t as student_t

from eval import SPLIT_LABELS, mean_ci, to_json
from test_docs import DOCS, RESEARCH, ROOT, results  # results.py, loaded once

SHIPPED = "real310/shipped"


def test_committed_results_rebuild_from_the_evidence():
    """docs/results.md and the README's results block are exactly what docs/research/results.py makes of
    its evidence: a number changed by hand, or evidence changed without rerunning it, fails here."""
    assert (DOCS / "results.md").read_text() == results.build(), "rerun python docs/research/results.py"
    readme = (ROOT / "README.md").read_text()
    assert results.with_block(readme, results.readme_block()) == readme, "rerun python docs/research/results.py"
    assert (RESEARCH / "evidence" / "README.md").is_file()


def test_the_results_page_is_short():
    words = len((DOCS / "results.md").read_text().split())
    assert words <= 3000, f"docs/results.md has {words} words: the lab's results belong in the history"


def write_eval(folder, systems, split="test", n_mix=4, condition=None, step=7):
    """An eval JSON as `eval.py` writes it, two targets per mixture: systems maps a name to its per-example
    SI-SDRi (the other metrics follow from it)."""
    mids = [f"{i // 2}000-1-0001_{i // 2}001-1-0001" for i in range(2 * n_mix)]
    examples = {"mixture_id": mids, "target_index": [1 + i % 2 for i in range(2 * n_mix)],
                "speaker": [f"{i // 2}00{i % 2}" for i in range(2 * n_mix)]}
    report = {"data": "demo", "split": split, "label": SPLIT_LABELS.get(split, split), "mix_type": "clean",
              "n": 2 * n_mix, "stage": 2, "step": step, "machine": "a test machine", "torch": torch.__version__,
              "examples": examples, "systems": {}, **({"condition": condition} if condition else {})}
    for name, sdri in {"mixture": [0.0] * 2 * n_mix, **systems}.items():
        scores = {"si_sdr": [0.1 * i + v for i, v in enumerate(sdri)], "si_sdri": sdri, "level_db": sdri}
        report["systems"][name] = {"steps": 1 if name == results.M2F else 0,
                                   "metrics": {m: mean_ci(v, mids) for m, v in scores.items()}, "scores": scores}
    folder.mkdir(parents=True, exist_ok=True)
    suffix = results.CONDITION_FILES[condition or "two"]
    (folder / f"eval_demo_{split}_clean{suffix}.json").write_text(to_json(report) + "\n")
    return report


def test_paired_differences_are_clustered_by_mixture(tmp_path):
    mask = [1.0, 2.0, 0.5, 1.5, 2.0, 1.0, 0.0, 3.0]
    diff = [1.0, 1.5, 3.0, 3.5, 0.0, 0.5, 4.0, 4.5]  # one step - mask, per example: the two targets of a mixture agree
    r = write_eval(tmp_path / SHIPPED, {results.MASK: mask, results.M2F: [m + d for m, d in zip(mask, diff)]})
    d = results.difference(r, results.M2F, r, results.MASK)
    by_mixture = [1.25, 3.25, 0.25, 4.25]  # the oracle: a Student t interval over the 4 mixtures' mean differences
    half = student_t.ppf(0.975, 3) * np.std(by_mixture, ddof=1) / 2
    assert d["mean"] == pytest.approx(2.25) and d["ci95"] == pytest.approx(half) and (d["n"], d["clusters"]) == (8, 4)
    naive = mean_ci(diff)["ci95"]  # the 8 examples taken as independent: an interval that excludes zero
    assert naive < 2.25 < half
    assert f"beat its own mask? no measurable difference: +2.25 ± {half:.2f} dB (paired, n = 8 in 4 mixtures" \
        in results.readme_block(tmp_path)


@pytest.mark.parametrize("shift, words", [(+3.0, "**yes**: +"), (-3.0, "**no, the reverse**: -"),
                                          (0.0, "no measurable difference: ")])
def test_a_claim_is_a_result_only_when_its_interval_excludes_zero(tmp_path, shift, words):
    noise = [1.0, -1.0, -2.0, 2.0, 0.5, -0.5, 1.5, -1.5]  # zero mean; mixtures differ
    write_eval(tmp_path / SHIPPED, {results.MASK: [2.0] * 8, results.M2F: [2.0 + shift + e for e in noise]})
    write_eval(tmp_path / "real310/control", {results.MASK: [2.0] * 8})
    claim = next(line for line in results.build(tmp_path).splitlines() if "beat the fair control?" in line)
    assert words in claim and claim.count("**") == (0 if shift == 0 else 2)


def test_the_headline_says_what_one_step_does_in_each_condition(tmp_path):
    write_eval(tmp_path / SHIPPED, {results.MASK: [1.0] * 8, results.M2F: [1.0, 1.5] * 4})
    write_eval(tmp_path / SHIPPED, {results.MASK: [-1.0] * 8, results.M2F: [-3.0] * 8}, condition="absent")
    write_eval(tmp_path / SHIPPED, {results.MASK: [40.0] * 8, results.M2F: [35.0] * 8}, condition="lone")
    block = results.readme_block(tmp_path)
    assert "beat its own mask? **yes**: +0.25 ± 0.00 dB" in block
    assert "is its one step quieter than its mask? **yes**: +2.00 ± 0.00 dB" in block
    assert "| `pretrained/demo.pt`, 1 step | 1.25 ± 0.00 | 0.25 ± 0.00 | -3.00 ± 0.00 |" in block
    assert "fair control" not in block  # not evaluated: no row, no claim
    write_eval(tmp_path / "real310/control", {results.MASK: [0.5, 1.5] * 3}, n_mix=3)
    assert "beat the fair control" not in results.readme_block(tmp_path)  # other examples: no pairing


def test_the_analyses_and_the_reencoded_speech_come_from_their_files(tmp_path):
    r = write_eval(tmp_path / SHIPPED, {results.MASK: [1.0, 2.0] * 4, results.M2F: [1.0, 2.0] * 4})
    write_eval(tmp_path / "real310/opus12", {results.MASK: [1.5, 2.5] * 4, results.M2F: [1.0, 2.0] * 4})
    ids = r["examples"]["mixture_id"]
    ov = {"ckpt": "c.pt", "data": "demo", "split": "test", "n": 8, "mixture_id": ids,
          "pooled": {"mask": {"missing": 0.25, "excess": 0.5}, "one step": {"missing": 0.75, "excess": 0.125}},
          "per_example": {"mask": {"missing": [0.25] * 8, "excess": [0.5] * 8},
                          "one step": {"missing": [0.75] * 8, "excess": [0.125] * 8}}}
    (tmp_path / "real310/oversuppression.json").write_text(json.dumps(ov))
    page = results.build(tmp_path)
    assert "| mask | 25.0% | 50.0% |" in page and "| one step | 75.0% | 12.5% |" in page
    assert "miss more of the target's energy than its mask? **yes**: +50.00 ± 0.00 points" in page
    assert "less energy in excess of the target than its mask? **yes**: +37.50 ± 0.00 points" in page
    assert "- mask-only: SI-SDRi 2.00 ± 0.00 dB against 1.50 ± 0.00; the re-encoded minus the earlier, paired: " \
           "**yes**: +0.50 ± 0.00 dB" in page
    assert "- Mask2Flow 1 step: SI-SDRi 1.50 ± 0.00 dB against 1.50 ± 0.00; the re-encoded minus the earlier, " \
           "paired: no measurable difference: +0.00 ± 0.00 dB" in page
    assert "## Oracle ceilings" not in page  # no file, no section


def test_demo_sh_has_its_own_section(tmp_path):
    mask = [1.0, 2.0] * 4
    write_eval(tmp_path / "demo.sh", {results.MASK: [m + 1.5 for m in mask], results.M2F: [m + 1.75 for m in mask]})
    write_eval(tmp_path / "demo.sh", {results.MASK: [-1.0] * 8, results.M2F: [-3.0] * 8}, condition="absent")
    (tmp_path / "demo.sh" / "log.csv").write_text("stage,step,train_loss,dev_mixture,dev_mask,dev_flow1,minutes\n"
                                                  "1,900,0.4,0.1,2.5,2.5,6.5\n2,500,0.3,0.1,2.5,2.75,7.25\n")
    section = results.build(tmp_path).split("## The main job: demo.sh")[1]
    assert "it trained stage 1 900 steps in 6.50 min, stage 2 500 steps in 7.25 min" in section
    assert "| two, clean | 2, 7 | 3.00 ± 0.00 | 3.25 ± 0.00 | better: +0.25 ± 0.00 |" in section
    assert "| absent, clean | 2, 7 | -1.00 ± 0.00 | -3.00 ± 0.00 | better: -2.00 ± 0.00 |" in section  # quieter is better


def test_bad_evidence_and_readme_fail_in_one_line(tmp_path):
    write_eval(tmp_path / "ev" / SHIPPED, {results.MASK: [1.0] * 8, results.M2F: [2.0] * 8})
    block = results.readme_block(tmp_path / "ev")
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{results.BEGIN}\nold\n{results.END}\n\nthe rest\n")
    out = tmp_path / "results.md"
    results.main(["--evidence", str(tmp_path / "ev"), "--out", str(out), "--readme", str(readme)])
    assert readme.read_text() == f"# title\n\n{results.BEGIN}\n{block.rstrip()}\n{results.END}\n\nthe rest\n"
    assert out.read_text() == results.build(tmp_path / "ev")
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs one"):
        results.main(["--evidence", str(tmp_path / "ev"), "--out", str(out), "--readme", str(readme)])
    path = tmp_path / "ev" / SHIPPED / "eval_demo_test_clean.json"
    report = json.loads(path.read_text())
    del report["examples"]
    path.write_text(json.dumps(report))
    with pytest.raises(SystemExit, match="no per-example scores"):
        results.build(tmp_path / "ev")
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="cannot read"):
        results.build(tmp_path / "ev")
    assert results.readme_block(tmp_path / "nothing").startswith("_No evaluation of the shipped model yet")
