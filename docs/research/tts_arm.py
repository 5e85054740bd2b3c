"""
The corpus of the synthetic-voices comparison (docs/6): the demo corpus's training sources plus the
synthetic pseudo-speakers of the former demo corpus (Debian's flite and festival voices, shaped by sox),
with the demo's dev split. Train on it exactly as on data/demo, with --dynamic-mix.

    # the former corpus, its training split only (needs flite, festival, sox and the festvox voices):
    git worktree add /tmp/tts 1f29879 && (cd /tmp/tts && python data.py demo --out $PWD/data/demo-tts \\
        --dev 0 --test 0 --test-synth 0 --test-seen 0)
    python docs/research/tts_arm.py        # -> data/demo-tts-mix
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from data import read_csv, utterances_of, write_csv  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEMO, TTS, OUT = (REPO / "data" / d / "Libri2Mix" / "wav16k" / "min" for d in ("demo", "demo-tts", "demo-tts-mix"))

if __name__ == "__main__":
    real = read_csv(DEMO / "metadata" / "mixture_train-100_mix_clean.csv")
    old = read_csv(TTS / "metadata" / "mixture_train-100_mix_clean.csv")
    csv = TTS / "metadata" / "mixture_train-100_mix_clean.csv"
    synthetic = [{**r, **{k: str(TTS / "train-100" / Path(r[k]).parent.name / Path(r[k]).name) for k in r if k.endswith("_path")}}
                 for r in old if all(int(u.split("-")[0]) >= 100000 for u in utterances_of(r, csv))]
    (OUT / "metadata").mkdir(parents=True, exist_ok=True)
    write_csv(OUT / "metadata" / "mixture_train-100_mix_clean.csv",
              [{k: r[k] for k in real[0]} for r in real + synthetic])
    for name in ("mixture_dev_mix_clean.csv", "mixture_dev_mix_both.csv", "enrollment_dev.csv"):
        (OUT / "metadata" / name).write_bytes((DEMO / "metadata" / name).read_bytes())
    if not (OUT / "dev").exists():
        (OUT / "dev").symlink_to(DEMO / "dev")
    utts = {u for r in synthetic for u in utterances_of(r, csv)}
    print(f"wrote {OUT}: {len(real)} real rows and {len(synthetic)} synthetic ones ({len(utts)} utterances of "
          f"{len({u.split('-')[0] for u in utts})} pseudo-speakers)")
