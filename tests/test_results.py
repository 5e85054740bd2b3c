"""Tests of docs/research/results.py: docs/results.md and the README's results block are built from the
evidence in docs/research/evidence alone; a claim "A beats B" is a result only when the paired,
mixture-clustered interval of A - B excludes zero."""

import dataclasses
import json
import re

import numpy as np
import pytest
import torch
from scipy.stats import t as student_t

from eval import SPLIT_LABELS, mean_ci, to_json
from mask2flow import CONFIGS, Mask2Flow
from test_docs import DOCS, RESEARCH, ROOT, load_docs_module, results  # results.py, loaded once


def test_committed_results_rebuild_from_the_evidence():
    """docs/results.md and the README's results block are exactly what docs/research/results.py makes of
    its evidence: a number changed by hand, or evidence changed without rerunning it, fails here."""
    assert (DOCS / "results.md").read_text() == results.build(), "rerun python docs/research/results.py"
    readme = (ROOT / "README.md").read_text()
    assert results.with_block(readme, results.readme_block()) == readme, "rerun python docs/research/results.py"
    assert (RESEARCH / "evidence" / "README.md").is_file()


def write_eval(folder, systems, split="test", mix_type="clean", stage=2, seed=0, config=None, n_mix=4,
               trained_on="x/ckpt_stage1.pt", step=None, **more):
    """An eval JSON as `eval.py` writes it, two targets per mixture: systems maps a name to
    (steps, per-example SI-SDRi); the other metrics follow from it, and None marks a failed metric.
    trained_on: the --stage1 checkpoint the run started from (None: from scratch); step: of the checkpoint
    (default 7; for a stage 1 from scratch, demo's stage-1 steps); more: other fields."""
    mids = [f"{i // 2}000-1-0001_{i // 2}001-1-0001" for i in range(2 * n_mix)]
    examples = {"mixture_id": mids, "target_index": [1 + i % 2 for i in range(2 * n_mix)],
                "speaker": [f"{i // 2}00{i % 2}" for i in range(2 * n_mix)]}
    mixture = [0.1 * i for i in range(2 * n_mix)]
    report = {"data": "demo", "split": split, "label": SPLIT_LABELS.get(split, split), "mix_type": mix_type,
              "n": 2 * n_mix, "checkpoint": "x/ckpt_best.pt", "stage": stage, "seed": seed,
              "step": step if step is not None else (results.STAGE1_STEPS if stage == 1 and trained_on is None else 7),
              "trained_on": trained_on,
              "config": {**dataclasses.asdict(CONFIGS["tiny"]), **(config or {})}, "parameters": {"total": 1234567},
              "machine": "a test machine", "torch": torch.__version__, "seconds": 1.0, "examples": examples,
              "systems": {}, **more}
    for name, (k, sdri) in {"mixture": (None, [0.0] * 2 * n_mix), **systems}.items():
        scores = {"si_sdr": [None if v is None else m + v for m, v in zip(mixture, sdri)], "si_sdri": sdri,
                  "pesq": [None if v is None else 1.5 + v / 10 for v in sdri], "estoi": [0.5] * 2 * n_mix,
                  "spk_sim": [0.8] * 2 * n_mix}
        report["systems"][name] = {"steps": k, "metrics": {m: mean_ci(v, mids) for m, v in scores.items()},
                                   "scores": scores}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"eval_demo_{split}_{mix_type}.json").write_text(to_json(report) + "\n")
    return report


def condition_report(report, condition, key, levels):
    """report (from write_eval) as eval.py writes another condition: each system of levels (name: value)
    scored on key alone, value + 0.1 on every second example."""
    mids = report["examples"]["mixture_id"]
    systems = {}
    for name, level in levels.items():
        scores = {key: [level + 0.1 * (i % 2) for i in range(len(mids))]}
        systems[name] = {"steps": None, "scores": scores, "metrics": {key: mean_ci(scores[key], mids)}}
    return {**report, "condition": condition, "systems": systems}


def test_paired_differences_are_clustered_by_mixture(tmp_path):
    mask = [1.0, 2.0, 0.5, 1.5, 2.0, 1.0, 0.0, 3.0]
    diff = [1.0, 1.5, 3.0, 3.5, 0.0, 0.5, 4.0, 4.5]  # Mask2Flow - mask, per example: the two targets of a mixture agree
    write_eval(tmp_path / "m2f", {"mask-only": (0, mask), "Mask2Flow 1 step": (1, [m + d for m, d in zip(mask, diff)])})
    labels = results.conditions(results.read_evidence(tmp_path))[("demo", "test", "clean")]
    d = results.paired(labels["Mask2Flow 1 step"], labels[results.MASK], "si_sdri")
    by_mixture = [1.25, 3.25, 0.25, 4.25]  # the oracle: a Student t interval over the 4 mixtures' mean differences
    half = student_t.ppf(0.975, 3) * np.std(by_mixture, ddof=1) / 2
    assert d["mean"] == pytest.approx(2.25) and d["ci95"] == pytest.approx(half) and (d["n"], d["clusters"]) == (8, 4)
    naive = mean_ci(diff)["ci95"]  # the 8 examples taken as independent: an interval that excludes zero
    assert naive < 2.25 < half
    page = results.build(tmp_path)
    assert f"| the flow stage improves on its own mask (demo test, clean) | yes (masking over-suppresses) | " \
           f"no measurable difference: +2.25 ± {half:.2f} dB (paired, n = 8 in 4 mixtures; one seed each) |" in page
    assert f"| {results.MASK} | 0 | " in page and "`m2f` (2, 7, 0)" in page


@pytest.mark.parametrize("shift, words", [(+3.0, "**yes**: +"), (-3.0, "**no, the reverse**: -"),
                                          (0.0, "no measurable difference: ")])
def test_a_claim_is_a_result_only_when_its_interval_excludes_zero(tmp_path, shift, words):
    noise = [1.0, -1.0, -2.0, 2.0, 0.5, -0.5, 1.5, -1.5]  # zero mean; mixtures differ
    control = [2.0] * 8
    write_eval(tmp_path / "m2f", {"mask-only": (0, control), "Mask2Flow 1 step": (1, [2.0 + shift + e for e in noise])})
    write_eval(tmp_path / "control", {"mask-only": (0, control), "Mask2Flow 1 step": (1, control)}, stage=1, seed=5)
    page = results.build(tmp_path)
    claim = next(line for line in page.splitlines() if "same budget spent on masking (demo test, clean)" in line)
    assert words in claim and "one seed each" in claim
    assert claim.count("**") == (0 if shift == 0 else 2)
    assert f"| {results.CONTROL} | 0 | " in page and "Mask2Flow 1 step | 1 | 2.00" not in page  # the control's flow: untrained


def test_failures_are_counted_and_shown(tmp_path):
    m2f = [3.0, 4.0, 3.5, 4.5, 3.0, 4.0, 3.5, None]  # one example whose metrics failed
    write_eval(tmp_path / "m2f", {"mask-only": (0, [1.0] * 8), "Mask2Flow 1 step": (1, m2f)})
    page = results.build(tmp_path)
    row = next(line for line in page.splitlines() if line.startswith("| Mask2Flow 1 step | 1 | "))
    assert row.count("(n = 7)") == 3 and "| 3.64 ± " in row  # SI-SDR, SI-SDRi and PESQ failed there, not ESTOI
    assert "(n = k) after a value: the metric failed on the other examples, which its mean leaves out." in page
    mask_row = next(line for line in page.splitlines() if line.startswith(f"| {results.MASK} | 0 | "))
    assert "(n =" not in mask_row
    claim = next(line for line in page.splitlines() if line.startswith("| the flow stage improves on its own mask"))
    assert "n = 7 in 4 mixtures, 1 without both scores left out" in claim


def test_seeds_are_averaged_per_example_and_counted(tmp_path):
    mask = [1.0] * 8
    for seed, gain in ((0, 1.0), (1, 3.0)):  # two training seeds of Mask2Flow, one of the control
        write_eval(tmp_path / f"m2f-{seed}", {"mask-only": (0, mask), "Mask2Flow 1 step": (1, [1 + gain] * 8)}, seed=seed)
    write_eval(tmp_path / "control", {"mask-only": (0, [1.5] * 8), "Mask2Flow 1 step": (1, [1.5] * 8)}, stage=1)
    page = results.build(tmp_path)
    claim = next(line for line in page.splitlines() if "same budget spent on masking" in line)
    assert "+1.50" in claim and "2 seeds against one seed" in claim  # (2 + 4) / 2 - 1.5
    assert page.count(f"| {results.MASK} | 0 | ") == 1  # the same masker in both seeds' files: kept once
    assert "`m2f-0` (2, 7, 0)" in page and "`m2f-1` (2, 7, 1)" in page


def test_any_split_and_the_time_sampler_variant(tmp_path):
    base = {"mask-only": (0, [1.0] * 8), "Mask2Flow 1 step": (1, [2.0, 2.5] * 4)}
    for split in ("test", "test-synth", "dev", "test-other"):  # results.py knows no list of splits
        write_eval(tmp_path / "m2f", base, split=split)
    write_eval(tmp_path / "uniform", {**base, "Mask2Flow 1 step": (1, [1.0, 1.5] * 4)}, config={"t_zero": 0.0, "t_power": 1.0})
    page = results.build(tmp_path)
    for split, label in (("test", "unseen real speakers"), ("test-synth", "test-synth"),  # a split with no label
                         ("dev", "unseen speakers (validation)"), ("test-other", "test-other")):
        assert f"### demo {split} ({label}), clean" in page
    assert "| Mask2Flow 1 step (t_zero 0, t_power 1) | 1 | " in page
    assert "| Config's defaults beat (t_zero 0, t_power 1) (demo test, clean) | not reported | " \
           "**yes**: +1.00 ± 0.00 dB" in page
    assert "| the flow stage improves on its own mask (t_zero 0, t_power 1) (demo test, clean) | " \
           "yes (masking over-suppresses) | **yes**: +0.25 ± " in page  # the variant against its own mask


def test_a_stage1_variant_is_compared_with_its_own_mask(tmp_path):
    write_eval(tmp_path / "m2f", {"mask-only": (0, [1.0] * 8), "Mask2Flow 1 step": (1, [2.0, 2.5] * 4)})
    write_eval(tmp_path / "tuned", {"mask-only": (0, [3.0] * 8), "Mask2Flow 1 step": (1, [3.5, 3.0] * 4)},
               config={"mask_wave_loss": 0.01, "wave_loss": 0.001})
    page = results.build(tmp_path)
    masks = [line for line in page.splitlines() if line.startswith(f"| {results.MASK}")]
    assert len(masks) == 2 and "| 1.00 ± " in masks[0] and masks[1].startswith(f"| {results.MASK} (mask_wave_loss 0.01) | 0 |")
    assert "| 3.00 ± " in masks[1]
    assert "| the flow stage improves on its own mask (mask_wave_loss 0.01, wave_loss 0.001) (demo test, clean) | " \
           "yes (masking over-suppresses) | **yes**: +0.25 ± " in page  # against 3.00, not the other run's 1.00
    assert "2 seeds" not in page  # two maskers, not two seeds of one
    assert "| Config's defaults beat (mask_wave_loss 0.01), mask-only (demo test, clean) | not reported | " \
           "**no, the reverse**: -2.00 ± " in page
    write_eval(tmp_path / "control", {"mask-only": (0, [3.5] * 8)}, stage=1, config={"mask_wave_loss": 0.01})
    page = results.build(tmp_path)
    assert "| the flow stage beats the same budget spent on masking (mask_wave_loss 0.01, wave_loss 0.001) (demo test, " \
           "clean) | not reported | **no, the reverse**: -0.25 ± " in page  # against its own control


def test_a_mask_trained_on_some_voices_is_compared_on_the_targets_it_heard_and_the_others(tmp_path):
    """Targets 1 of each mixture have speakers '<i>000', which the --voices run trained on."""
    for split in ("test-seen", "test"):
        write_eval(tmp_path / "m2f", {"mask-only": (0, [1.0] * 8), "Mask2Flow 1 step": (1, [1.0] * 8)}, split=split)
    write_eval(tmp_path / "half", {"mask-only": (0, [2.0, 0.0] * 4)}, split="test-seen", stage=1, trained_on=None,
               voices=0.5, trained_voices=[f"{i}000" for i in range(4)])
    write_eval(tmp_path / "half", {"mask-only": (0, [0.5] * 8)}, stage=1, trained_on=None,
               voices=0.5, trained_voices=["elsewhere"])  # test: no target heard, no such rows
    page = results.build(tmp_path)
    claim = "| Config's defaults beat (voices 0.5), mask-only, on the targets whose voice it"
    assert f"{claim} heard (demo test-seen, clean) | not reported | **no, the reverse**: -1.00 ± 0.00 dB " \
           "(paired, n = 4 in 4 mixtures" in page
    assert f"{claim} never heard (demo test-seen, clean) | not reported | **yes**: +1.00 ± 0.00 dB " \
           "(paired, n = 4 in 4 mixtures" in page
    assert "(demo test-seen, clean) | not reported | no measurable difference: +0.00 ± " in page  # all 8 together
    assert page.count(claim) == 2


def test_variants_are_named_against_their_preset():
    """A small-preset run is no variant, also one saved before a field existed (it has the default);
    a wider DiT or other tokens on it are variants, named by what differs."""
    small = dataclasses.asdict(CONFIGS["small"])
    assert results.variant({"config": small}) == ""
    assert results.variant({"config": {k: v for k, v in small.items() if k not in ("spk_stride", "mask_stride")}}) == ""
    assert results.variant({"config": {**small, "spk_stride": 2, "patch": 2}}) == " (spk_stride 2, patch 2)"
    wide = {**small, "dit_width": 192, "dit_depth": 4, "wave_loss": 0.001}
    assert results.variant({"config": wide}) == " (dit_width 192, dit_depth 4, wave_loss 0.001)"
    assert results.variant({"config": dataclasses.asdict(CONFIGS["paper"])}) == ""
    assert results.variant({"config": small, "voices": 1.0}) == ""  # train.py --voices: every voice
    assert results.variant({"config": small, "voices": 0.5}) == " (voices 0.5)"
    assert results.variant({"config": small, "speed": [0.9, 1.1]}) == ""
    assert results.variant({"config": small, "speed": [0.8, 1.25]}) == " (speed 0.8-1.25)"
    alone = {"config": small, "stage": 1, "trained_on": None}  # a stage 1 from scratch: its steps count
    assert results.variant({**alone, "step": results.STAGE1_STEPS}) == ""
    assert results.variant({**alone, "step": 12000}) == " (train_steps 12000)"
    assert results.variant({**alone, "step": 2400, "trained_on": "x/ckpt_stage1.pt"}) == ""  # a control
    assert results.variant({**alone, "step": 2400, "stage": 2}) == ""  # a flow's steps are not its mask's
    assert results.variant({"config": {**small, "patch": 2}, "voices": 0.5}, results.FLOW_VARIANTS) == " (patch 2)"
    m2f = results.M2F
    labels = {m2f, results.MASK, f"{m2f} (wave_loss 0.001)", f"{m2f} (dit_width 192, dit_depth 4, wave_loss 0.001)"}
    claims = {(a, b, claim) for a, b, claim, _ in results.comparisons(labels)}
    assert (f"{m2f} (wave_loss 0.001)", f"{m2f} (dit_width 192, dit_depth 4, wave_loss 0.001)",
            "the preset's DiT size beats (dit_width 192, dit_depth 4, wave_loss 0.001)") in claims


def test_a_masker_trained_alone_is_a_mask_not_a_control(tmp_path):
    write_eval(tmp_path / "m2f", {"mask-only": (0, [1.0] * 8), "Mask2Flow 1 step": (1, [2.0] * 8)})
    write_eval(tmp_path / "lstm", {"mask-only": (0, [1.0, 0.0] * 4), "Mask2Flow 1 step": (1, [9.0] * 8)}, stage=1,
               config={"masker": "lstm", "mask_hidden": 96}, trained_on=None)
    page = results.build(tmp_path)
    row = next(line for line in page.splitlines() if line.startswith(f"| {results.MASK} (masker lstm, mask_hidden 96) | 0 |"))
    assert "| 0.50 ± 0.00 |" in row and "`lstm` (1, 4500, 0)" in row  # SI-SDRi; the run (stage, step, seed)
    assert results.CONTROL not in page and "| 9.00 ± " not in page  # its flow is untrained
    assert "| Config's defaults beat (masker lstm, mask_hidden 96), mask-only (demo test, clean) | not reported | " \
           "**yes**: +0.50 ± 0.00 dB" in page


def test_empty_evidence_says_the_results_are_being_rebuilt(tmp_path):
    page, block = results.build(tmp_path), results.readme_block(tmp_path)
    assert block.startswith("_No evaluation on the 310-speaker corpus yet") and "real310/README.md" in block
    assert results.REBUILD in page and "-o docs/research/evidence/RUN" in page and page.count("_Not measured yet._") == 8
    assert not re.search(r"\d\.\d", block)  # no measured number at all


def test_demo_sh_has_its_own_section_and_is_no_seed(tmp_path):
    mask = [1.0, 2.0] * 4
    write_eval(tmp_path / "m2f", {"mask-only": (0, mask), "Mask2Flow 1 step": (1, mask)})
    write_eval(tmp_path / "demo.sh", {"mask-only": (0, [m + 1.5 for m in mask]),
                                      "Mask2Flow 1 step": (1, [m + 1.75 for m in mask])})
    (tmp_path / "demo.sh" / "log.csv").write_text("stage,step,train_loss,dev_mixture,dev_mask,dev_flow1,minutes\n"
                                                  "1,900,0.4,0.1,2.5,2.5,6.5\n2,0,nan,0.1,2.5,2.5,0\n2,500,0.3,0.1,2.5,2.75,7.25\n")
    absent = condition_report(write_eval(tmp_path / "scratch", {}), "absent", "level_db",
                              {"mixture": 0.0, "mask-only": -1.0, "Mask2Flow 1 step": -3.0})
    (tmp_path / "demo.sh" / "eval_demo_test_clean_absent.json").write_text(to_json(absent) + "\n")
    page = results.build(tmp_path)
    tables, section = page.split("## The main job: demo.sh")
    assert "it trained stage 1 900 steps in 6.50 min, stage 2 500 steps in 7.25 min" in section
    assert "| demo test (unseen real speakers) | two, clean | 2, 7 | 3.00 ± 0.00 | 3.25 ± 0.00 | better: +0.25 ± 0.00 |" \
        in section
    assert "| demo test (unseen real speakers) | absent, clean | 2, 7 | -0.95 ± 0.00 | -2.95 ± 0.00 | better: -2.00 ± 0.00 |" \
        in section  # the target absent: quieter is better
    assert "demo.sh" not in tables and "2 seeds" not in tables  # neither a row nor a seed of the default system
    assert "demo.sh" not in results.readme_block(tmp_path)


def test_compare_uses_the_conditions_metric_and_its_direction(tmp_path):
    compare = load_docs_module("compare")
    two = write_eval(tmp_path / "two", {"mask-only": (0, [1.0, 2.0] * 4), "Mask2Flow 1 step": (1, [1.5, 2.5] * 4)})
    path = tmp_path / "two" / "eval_demo_test_clean.json"
    d, word, metric = compare.compare(path, "Mask2Flow 1 step", path, "mask-only")
    assert (metric, word, round(d["mean"], 6)) == ("si_sdri", "A is ahead", 0.5)
    absent = condition_report(two, "absent", "level_db", {"mixture": 0.0, "mask-only": -1.0, "Mask2Flow 1 step": -3.0})
    (tmp_path / "absent.json").write_text(to_json(absent))  # the target absent: its level, where quieter is better
    d, word, metric = compare.compare(tmp_path / "absent.json", "Mask2Flow 1 step", tmp_path / "absent.json", "mask-only")
    assert (metric, word, round(d["mean"], 6)) == ("level_db", "A is ahead", -2.0)
    with pytest.raises(SystemExit, match="has no si_sdri of 'mask-only'"):
        compare.compare(tmp_path / "absent.json", "mask-only", tmp_path / "absent.json", "mask-only", "si_sdri")


def test_the_headline_says_what_one_step_does_in_each_condition(tmp_path):
    shipped = tmp_path / results.REAL310 / "shipped"
    write_eval(shipped, {"mask-only": (0, [1.0] * 8), results.M2F: (1, [1.0] * 8)}, step=0)
    assert "kept its untrained start" in results.readme_block(tmp_path)
    two = write_eval(shipped, {"mask-only": (0, [1.0] * 8), results.M2F: (1, [1.0, 1.5] * 4)})
    for condition, key, (mask, m2f) in (("absent", "level_db", (-1.0, -3.0)), ("lone", "si_sdr", (40.0, 35.0))):
        report = condition_report(two, condition, key, {"mask-only": mask, results.M2F: m2f})
        (shipped / f"eval_demo_test_clean_{condition}.json").write_text(to_json(report) + "\n")
    block = results.readme_block(tmp_path)
    assert "kept its untrained start" not in block
    assert "beat its own mask? **yes**: +0.25 ± 0.00 dB" in block
    assert "is its one step quieter than its mask? **yes**: +2.00 ± 0.00 dB" in block
    assert "keep a lone target voice as well as its mask? **no, the reverse**: -5.00 ± 0.00 dB" in block


def test_training_runs_and_figures_come_from_their_files(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.csv").write_text("stage,step,train_loss,dev_mixture,dev_mask,dev_flow1,minutes\n"
                                              "1,500,0.5,0.1,1.5,1.5,4.25\n1,1000,0.4,0.1,2.5,2.5,8.5\n"
                                              "2,300,0.3,0.1,2.5,3.25,3.75\n2,600,0.3,0.1,2.5,3.0,7.0\n")
    (tmp_path / "di.json").write_text((RESEARCH / "evidence" / "di.json").read_text())
    page = results.build(tmp_path)
    assert "| `run` | 1 | 1000 | 8.50 | 2.50 | 1000 |" in page and "| `run` | 2 | 600 | 7.00 | 3.25 | 300 |" in page
    assert f"Source: `{tmp_path.name}/di.json` (docs/research/figures.py di)" in page


def test_bad_evidence_and_readme_fail_in_one_line(tmp_path):
    write_eval(tmp_path / "ev" / "m2f", {"mask-only": (0, [1.0] * 8)})
    write_eval(tmp_path / "ev" / results.REAL310 / "shipped", {"mask-only": (0, [1.0] * 8), results.M2F: (1, [2.0] * 8)})
    block = results.readme_block(tmp_path / "ev")
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{results.BEGIN}\nold\n{results.END}\n\nthe rest\n")
    out = tmp_path / "results.md"
    results.main(["--evidence", str(tmp_path / "ev"), "--out", str(out), "--readme", str(readme)])
    assert readme.read_text() == f"# title\n\n{results.BEGIN}\n{block.rstrip()}\n{results.END}\n\nthe rest\n"
    assert out.read_text() == results.build(tmp_path / "ev")
    assert "| `pretrained/demo.pt`, mask-only | 1.00 ± 0.00 |" in block
    assert "Does one step of `pretrained/demo.pt` beat its own mask? **yes**: +1.00 ± 0.00 dB" in block
    assert "fair control" not in block  # not evaluated yet
    write_eval(tmp_path / "ev" / results.REAL310 / "control", {"mask-only": (0, [0.5, 1.5] * 4)})
    block = results.readme_block(tmp_path / "ev")
    assert "| fair control: its stage 1 trained on for stage 2's steps | 1.00 ±" in block
    assert "Does one step of `pretrained/demo.pt` beat the fair control? **yes**: +1.00 ±" in block
    write_eval(tmp_path / "ev" / results.REAL310 / "control", {"mask-only": (0, [0.5, 1.5] * 3)}, n_mix=3)
    assert "beat the fair control" not in results.readme_block(tmp_path / "ev")  # other examples: no pairing
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs one"):
        results.main(["--evidence", str(tmp_path / "ev"), "--out", str(out), "--readme", str(readme)])
    path = tmp_path / "ev" / "m2f" / "eval_demo_test_clean.json"
    report = json.loads(path.read_text())
    del report["examples"]
    path.write_text(json.dumps(report))
    with pytest.raises(SystemExit, match="no per-example scores"):
        results.build(tmp_path / "ev")
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="cannot read"):
        results.build(tmp_path / "ev")


def test_rtf_is_the_runs_own_when_timed_else_a_preset_of_its_size():
    bench = {"rows": [{"config": "small", "checkpoint": None, "device": "cpu", "parameters": 5, "rtf": {"1": 0.02}},
                      {"config": "run-b", "checkpoint": "runs/run-b/ckpt_last.pt", "device": "cpu", "parameters": 5,
                       "rtf": {"1": 0.01}},
                      {"config": "small, torch.compile", "compile": True, "device": "cpu", "parameters": 5,
                       "rtf": {"1": 0.001}}]}
    assert results.rtf(bench, 5, 1, "run-b") == "0.0100"  # its own checkpoint's timing
    assert results.rtf(bench, 5, 1, "run-a") == "0.0200"  # another run's is no preset: the eager preset's
    assert results.rtf(bench, 6, 1, "run-a") == "–" and results.rtf(bench, 5, 4, "run-b") == "–"


def test_speedups_compare_a_preset_with_itself_before_in_the_same_run():
    rows = [{"config": "paper", "device": "cpu", "rtf": {"0": 0.02, "1": 0.03}},
            {"config": "paper, torch.compile", "device": "cpu", "rtf": {"1": 0.025}},
            {"config": "paper, before", "device": "cpu", "rtf": {"0": 0.05, "1": 0.075}},
            {"config": "paper, before, torch.compile", "device": "cpu", "rtf": {"1": 0.05}},
            {"config": "small", "device": "cpu", "rtf": {"1": 0.01}}]  # no before row: no line
    assert results.speedups(rows) == [
        "- `paper` on cpu: one step 2.50x as fast as `paper, before` (RTF 0.0300 against 0.0750, same run)",
        "- `paper, torch.compile` on cpu: one step 2.00x as fast as `paper, before, torch.compile` "
        "(RTF 0.0250 against 0.0500, same run)",
        "- `paper, torch.compile` on cpu: one step 3.00x as fast as `paper, before` (RTF 0.0250 against 0.0750, "
        "same run)", ""]
    assert results.speedups(rows[4:]) == []


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the repository's git history")
def test_then_bench_times_an_earlier_commit_beside_today(tmp_path):
    then_bench = load_docs_module("then_bench")
    out = tmp_path / "then.json"
    then_bench.main(["--rev", "HEAD", "--configs", "tiny", "--repeats", "2", "-o", str(out)])
    report = json.loads(out.read_text())
    (r,) = report["rows"]
    assert r["config"] == "tiny" and report["steps"] == [0, 1]
    assert r["parameters"]["now"] == sum(p.numel() for p in Mask2Flow(CONFIGS["tiny"]).parameters())
    assert all(len(r["seconds"][w][k]) == 2 and r["rtf"][w][k] > 0 for w in ("then", "now") for k in ("0", "1"))
    table = results.then_section({**report, "_file": "evidence/then.json"})
    assert any(line.startswith("| tiny |") for line in table)
    with pytest.raises(SystemExit, match="cannot read mask2flow.py"):
        then_bench.main(["--rev", "no-such-revision", "-o", str(out)])
