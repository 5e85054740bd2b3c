"""docs/paper_figures.py: the README's table of what a recogniser and a listener make of the shipped
model's outputs is exactly what the script makes of the committed evidence; Figure 4 draws from it;
`compare` pairs two reports of the same examples."""
import importlib.util
import json

import pytest

from test_docs import ROOT

spec = importlib.util.spec_from_file_location("paper_figures", ROOT / "docs" / "paper_figures.py")
paper_figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paper_figures)


def evidence():
    return json.loads(paper_figures.EVIDENCE.read_text())


def test_readme_table_is_rebuilt_from_the_evidence():
    report = evidence()
    table = paper_figures.table(report, paper_figures.EVIDENCE.relative_to(ROOT))
    assert table in (ROOT / "README.md").read_text(), "rerun python docs/paper_figures.py and paste its table"
    assert report["n"] == 200 and report["checkpoint"].endswith("pretrained/demo.pt")
    assert {"wer", "dnsmos_ovrl", "pesq"} <= set(report["paired"]["Mask2Flow 1 step − mask-only"])
    assert (ROOT / "docs" / "fig4_wer.png").is_file() and (ROOT / "docs" / "fig5_spectrograms.png").is_file()


def test_figure4_draws_from_a_report(tmp_path):
    pytest.importorskip("matplotlib", reason="requirements-docs.txt not installed")
    paper_figures.figure4(evidence(), tmp_path / "fig4.png")
    assert (tmp_path / "fig4.png").stat().st_size > 1000


def test_compare_pairs_two_reports_of_the_same_examples(tmp_path, capsys):
    a = evidence()
    b = json.loads(json.dumps(a))
    step = b["systems"]["Mask2Flow 1 step"]["scores"]
    step["si_sdri"] = [None if v is None else v - 1 for v in step["si_sdri"]]  # one dB worse everywhere
    for name, r in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    assert paper_figures.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    assert "| first − second, paired | Mask2Flow 1 step | 1.00 ± 0.00 |" in capsys.readouterr().out
    b["examples"]["mixture_id"] = b["examples"]["mixture_id"][::-1]
    (tmp_path / "b.json").write_text(json.dumps(b))
    with pytest.raises(AssertionError, match="not on the same examples"):
        paper_figures.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
