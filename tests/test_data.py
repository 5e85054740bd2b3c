"""Tests of data.py on a tiny LibriMix-layout corpus written here (synthetic tones, seconds)."""
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings, strategies as st

import data
from data import AudioError, DataError, DynamicMix, LibriMix, collate, load_audio, resolve_root, rms_db

DATA_PY = Path(__file__).resolve().parents[1] / "data.py"
ELSEWHERE = Path("/nonexistent/machine-that-built-it/LibriMix")  # absolute CSV paths that are not here
SPEAKERS = ("19", "26", "103", "1034")


def tone(utt, n, rate):
    """A signal that identifies its utterance: a chirp below 4 kHz whose start encodes the ID."""
    f, t = 200 + zlib.crc32(utt.encode()) % 1000, np.arange(n) / rate
    return 0.3 * np.sin(2 * np.pi * (f + 50 * t) * t)


def make_librimix(root, split, n_mix, freq="16k"):
    """Libri2Mix/wav<freq>/min/<split> as the upstream generator writes it, CSV paths from elsewhere."""
    rate = int(freq[:-1]) * 1000
    d = root / "Libri2Mix" / f"wav{freq}" / "min"
    rng = np.random.default_rng(0)
    rows = {"mix_clean": [], "mix_both": []}
    for m in range(n_mix):
        a, b = SPEAKERS[m % 4], SPEAKERS[(m + 1) % 4]
        utts = [f"{a}-{10 + m}-{2 * m:04d}", f"{b}-{20 + m}-{2 * m + 1:04d}"]
        mid, n = "_".join(utts), rate * (7 + m) // 10
        s1, s2, noise = tone(utts[0], n, rate), tone(utts[1], n, rate), 0.01 * rng.standard_normal(n)
        wavs = dict(s1=s1, s2=s2, noise=noise, mix_clean=s1 + s2, mix_both=s1 + s2 + noise)
        for sub, x in wavs.items():
            (d / split / sub).mkdir(parents=True, exist_ok=True)
            sf.write(d / split / sub / f"{mid}.wav", x, rate)
        far = lambda sub: str(ELSEWHERE / "Libri2Mix" / f"wav{freq}" / "min" / split / sub / f"{mid}.wav")
        for sub in rows:
            noise_path = {"noise_path": far("noise")} if sub == "mix_both" else {}
            rows[sub].append(dict(mixture_ID=mid, mixture_path=far(sub), source_1_path=far("s1"),
                                  source_2_path=far("s2"), **noise_path, length=n))
    (d / "metadata").mkdir(exist_ok=True)
    for sub, r in rows.items():
        data.write_csv(d / "metadata" / f"mixture_{split}_{sub}.csv", r)
        (d / "metadata" / f"metrics_{split}_{sub}.csv").write_text("not,read\n1,2\n")
    return rows["mix_clean"]


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "LibriMix"
    make_librimix(root, "test", 6)
    make_librimix(root, "test", 6, freq="8k")
    make_librimix(root, "train-100", 8)
    return root


def source_index(root, split):
    """Every s1/s2 file of a split, keyed by its samples -> its utterance ID."""
    index = {}
    for k in (1, 2):
        for p in (root / "Libri2Mix" / "wav16k" / "min" / split / f"s{k}").glob("*.wav"):
            index[load_audio(p).tobytes()] = p.stem.split("_")[k - 1]
    return index


def test_two_examples_per_mixture(corpus):
    rows = data.read_csv(corpus / "Libri2Mix/wav16k/min/metadata/mixture_test_mix_clean.csv")
    for mix_type, sub in (("clean", "mix_clean"), ("noisy", "mix_both")):
        ds = LibriMix(corpus, "test", mix_type=mix_type, segment=None)
        assert len(ds) == 2 * len(rows)
        for i in range(len(ds)):
            item, mid = ds[i], rows[i // 2]["mixture_ID"]
            k = i % 2 + 1
            assert (item["mixture_id"], item["target_index"]) == (mid, k)
            assert item["speaker"] == mid.split("_")[k - 1].split("-")[0]
            d = corpus / "Libri2Mix/wav16k/min/test"
            assert torch.equal(item["target"], torch.from_numpy(load_audio(d / f"s{k}" / f"{mid}.wav")))
            assert torch.equal(item["mix"], torch.from_numpy(load_audio(d / sub / f"{mid}.wav")))


@pytest.mark.parametrize("split", ["train-100", "test"])
def test_enrollment_is_another_utterance_of_the_target_speaker(corpus, split):
    index, ds = source_index(corpus, split), LibriMix(corpus, split, segment=None)
    drawn = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            enroll_utt = index[item["enroll"].numpy().tobytes()]
            target_utt = item["mixture_id"].split("_")[item["target_index"] - 1]
            assert enroll_utt.split("-")[0] == item["speaker"] and enroll_utt != target_utt
            drawn.append(enroll_utt)
    assert len(set(drawn)) > len(ds) // 2 + (2 if split.startswith("train") else 0)


def test_training_redraws_enrollments_per_epoch_deterministically(corpus):
    ds = LibriMix(corpus, "train-100", segment=None, seed=1)
    epoch = lambda e: (ds.set_epoch(e), [ds[i]["enroll"].numpy().tobytes() for i in range(len(ds))])[1]
    assert epoch(0) == epoch(0) and epoch(0) != epoch(1)


def test_fixed_enrollments_are_written_and_reused(corpus):
    path = corpus / "Libri2Mix/wav16k/min/metadata/enrollment_test.csv"
    enrolls = lambda ds: [ds[i]["enroll"].numpy().tobytes() for i in range(len(ds))]
    first = enrolls(LibriMix(corpus, "test", segment=None))
    assert path.is_file() and first == enrolls(LibriMix(corpus, "test", mix_type="noisy", segment=None, seed=7))
    rows = data.read_csv(path)
    assert {(r["mixture_ID"], r["target_index"]) for r in rows} == {(r["mixture_ID"], k) for r in rows for k in "12"}
    # the written list is what is read: point one target at another of its speaker's utterances
    ds = LibriMix(corpus, "test", segment=None)
    other = [p for p in ds.candidates(ds.mixtures[0][3][0]) if p.name not in rows[0]["enrollment_path"]][0]
    rows[0]["enrollment_path"] = f"test/{other.parent.name}/{other.name}"
    data.write_csv(path, rows)
    assert enrolls(LibriMix(corpus, "test", segment=None))[0] == load_audio(other).tobytes()


def test_fixed_enrollment_list_must_cover_every_target(corpus, capsys):
    path = corpus / "Libri2Mix/wav16k/min/metadata/enrollment_test.csv"
    LibriMix(corpus, "test", segment=None)  # writes the list
    rows = data.read_csv(path)
    data.write_csv(path, [r for r in rows if (r["mixture_ID"], r["target_index"]) != (rows[-1]["mixture_ID"], "2")])
    with pytest.raises(DataError, match=r"enrollment_test.csv lacks 1 of the 12 target rows of test, .*; delete it"):
        LibriMix(corpus, "test", segment=None)
    path.unlink()  # as the message says: the list is drawn again, whole
    assert len(LibriMix(corpus, "test", segment=None)) == len(rows) and "skipped" not in capsys.readouterr().out


def test_speakerbeam_map_is_read(corpus, capsys):
    ds = LibriMix(corpus, "test", segment=None)
    mids = [m[0] for m in ds.mixtures]
    lines = ["# mixture target enrollment", "1-2-3_4-5-6 1-2-3 s1/1-2-3_4-5-6"]  # a mixture of another list
    for mid in mids:
        for k, utt in enumerate(mid.split("_"), 1):
            donor = next(m for m in mids if m != mid and utt.split("-")[0] in m)  # same speaker, other mixture
            j = [u.split("-")[0] for u in donor.split("_")].index(utt.split("-")[0]) + 1
            lines.append(f"{mid} {utt} s{j}/{donor}")
    lines[-1] = f"{mids[-1]} {mids[-1].split('_')[1]} s2/{mids[-1]}"  # the target itself, as that list has
    sb = corpus / "Libri2Mix/wav16k/min/test/map_mixture2enrollment"
    sb.write_text("\n".join(lines) + "\n")
    ds = LibriMix(corpus, "test", segment=None)
    assert "1 of 12 targets with the target utterance itself" in capsys.readouterr().out
    for line in lines[2:]:
        mid, utt, enroll = line.split()
        k = mid.split("_").index(utt) + 1
        sub, donor = enroll.split("/")
        expected = load_audio(corpus / "Libri2Mix/wav16k/min/test" / sub / f"{donor}.wav")
        assert np.array_equal(ds[2 * mids.index(mid) + k - 1]["enroll"].numpy(), expected)
    sb.write_text(f"{mids[0]} 19-10-0000\n")
    with pytest.raises(DataError, match="map_mixture2enrollment:1: expected"):
        LibriMix(corpus, "test")


def test_crops_have_the_requested_length_and_match(corpus):
    ds = LibriMix(corpus, "train-100", segment=0.5, enroll_segment=0.4)
    d = corpus / "Libri2Mix/wav16k/min/train-100"
    for i in range(len(ds)):
        item = ds[i]
        assert item["mix"].shape == item["target"].shape == (8000,) and item["enroll"].shape == (6400,)
        full = load_audio(d / f"s{item['target_index']}" / f"{item['mixture_id']}.wav")
        mix = load_audio(d / "mix_clean" / f"{item['mixture_id']}.wav")
        t = item["target"].numpy()
        starts = np.flatnonzero(full[:len(full) - 8000 + 1] == t[0])
        start = next(s for s in starts if np.array_equal(full[s:s + 8000], t))
        assert np.array_equal(mix[start:start + 8000], item["mix"].numpy())  # one window for both


def test_full_length_and_short_mixtures(corpus):
    ds = LibriMix(corpus, "test", segment=10.0)  # longer than every mixture: returned whole
    rows = data.read_csv(corpus / "Libri2Mix/wav16k/min/metadata/mixture_test_mix_clean.csv")
    assert [len(ds[2 * m]["mix"]) for m in range(len(rows))] == [int(r["length"]) for r in rows]


def test_8k_is_resampled(corpus):
    ds8, ds16 = LibriMix(corpus, "test", freq="8k", segment=None), LibriMix(corpus, "test", segment=None)
    for i in range(len(ds8)):
        a, b = ds8[i]["mix"].numpy(), ds16[i]["mix"].numpy()
        assert len(a) == len(b)
        assert np.abs(a - b)[200:-200].max() < 0.02  # the same tones, band-limited below 4 kHz


def test_collate_pads_and_returns_lengths(corpus):
    ds = LibriMix(corpus, "test", segment=None)
    batch = collate([ds[i] for i in range(4)])
    assert batch["mix"].shape == batch["target"].shape == (4, int(batch["lengths"].max()))
    assert batch["enroll"].shape == (4, int(batch["enroll_lengths"].max()))
    for j in range(4):
        n = batch["lengths"][j]
        assert torch.equal(batch["mix"][j, :n], ds[j]["mix"]) and not batch["mix"][j, n:].any()
    assert batch["target_index"] == [1, 2, 1, 2] and len(batch["mixture_id"]) == len(batch["speaker"]) == 4
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=0)
    assert sum(len(b["mix"]) for b in loader) == len(ds)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=6))
def test_collate_property(lengths):
    batch = collate([dict(mix=torch.ones(n), target=torch.ones(n), enroll=torch.ones(n + 1), mixture_id="m",
                          target_index=1, speaker="s") for n in lengths])
    assert batch["lengths"].tolist() == lengths and batch["mix"].sum() == sum(lengths)
    assert batch["enroll_lengths"].tolist() == [n + 1 for n in lengths]


def test_wrong_layout_is_one_clear_message(tmp_path):
    for setup, found in ((lambda: None, "no such folder"), (lambda: (tmp_path / "x").mkdir(), "no metadata CSVs"),
                         (lambda: make_librimix(tmp_path / "x", "dev", 2, freq="8k"), "wav8k/min")):
        setup()
        with pytest.raises(DataError) as e:
            LibriMix(tmp_path / "x", "test")
        msg = str(e.value)
        assert "\n" not in msg and found in msg and "expected" in msg
        assert "Libri2Mix/wav16k/min/metadata/mixture_test_mix_clean.csv" in msg
        assert "JorisCos/LibriMix" in msg and "generate_librimix.sh" in msg
    with pytest.raises(DataError, match="clean|noisy"):
        LibriMix(tmp_path / "x", "dev", mix_type="loud")
    meta = tmp_path / "x/Libri2Mix/wav8k/min/metadata/mixture_dev_mix_clean.csv"
    rows = data.read_csv(meta)
    data.write_csv(meta, [dict(r, mixture_ID="mix1", original_mixture_ID="mix1") for r in rows])
    with pytest.raises(DataError, match="mixture ID mix1 does not join two utterance IDs"):
        LibriMix(tmp_path / "x", "dev", freq="8k")
    meta.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="mixture_dev_mix_clean.csv"):
        LibriMix(tmp_path / "x", "dev", freq="8k")


def test_missing_files_are_named(corpus):
    d = corpus / "Libri2Mix/wav16k/min/test"
    victim = next((d / "s2").glob("*.wav"))
    victim.unlink()
    ds = LibriMix(corpus, "test", segment=None)
    i = 2 * [m[0] for m in ds.mixtures].index(victim.stem) + 1
    with pytest.raises(AudioError, match=victim.name):
        ds[i]
    for sub in ("mix_clean", "s1", "s2", "noise", "mix_both"):
        for p in (d / sub).glob("*.wav"):
            p.unlink()
    with pytest.raises(DataError, match="missing"):
        LibriMix(corpus, "test")


def test_resolve_root_is_the_repositorys_from_any_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the repository
    repo = Path(data.__file__).resolve().parent
    monkeypatch.setenv("LIBRIMIX", "/corpora/LibriMix")
    assert resolve_root("demo") == repo / "data" / "demo" and resolve_root("x/y") == Path("x/y")  # given: from here
    assert resolve_root("LibriMix") == Path("/corpora/LibriMix")
    monkeypatch.delenv("LIBRIMIX")
    assert resolve_root("LibriMix") == repo / "LibriMix"


def cli(*args):
    return subprocess.run([sys.executable, str(DATA_PY), *map(str, args)], capture_output=True, text=True)


def test_check_cli(corpus):
    r = cli(corpus / "Libri2Mix", "--limit", "2")
    assert r.returncode == 0 and "all ok" in r.stdout and "2 mixtures" in r.stdout, r.stdout + r.stderr
    victim = next((corpus / "Libri2Mix/wav16k/min/test/mix_clean").glob("*.wav"))
    sf.write(victim, np.zeros(len(load_audio(victim))), 16000)
    r = cli(corpus)
    assert r.returncode == 1 and f"{victim.stem}: the mixture is not the sum" in r.stdout
    r = cli(corpus / "Libri2Mix" / "wav8k" / "min" / "test")  # not a corpus root
    assert r.returncode == 1 and "not a LibriMix folder" in r.stdout and "Traceback" not in r.stderr
    r = cli(corpus.parent / "nowhere")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1


# --- dynamic mixing ---

def sources_of(item):
    """The utterance IDs of a DynamicMix item: target, and interferer when there is one."""
    return item["mixture_id"].split("_")


def test_dynamic_mix_pool_is_every_source_utterance_by_speaker(corpus):
    rows = data.read_csv(corpus / "Libri2Mix/wav16k/min/metadata/mixture_train-100_mix_clean.csv")
    ds = DynamicMix(corpus, "train-100")
    utts = {u for r in rows for u in r["mixture_ID"].split("_")}
    assert {u for spk in ds.utts for u, _ in ds.utts[spk]} == utts and set(ds.utts) == set(SPEAKERS)
    assert all(u.split("-")[0] == spk and p.is_file() for spk in ds.utts for u, p in ds.utts[spk])
    assert len(ds) == 2 * len(rows) and len(DynamicMix(corpus, "train-100", length=7)) == 7


def test_dynamic_mix_speakers_differ_and_enrollment_is_another_utterance(corpus):
    index = source_index(corpus, "train-100")
    ds = DynamicMix(corpus, "train-100", segment=None, speed=(1, 1), single=0)  # whole files, unperturbed
    for i in range(60):
        item = ds[i]
        target, other = sources_of(item)
        assert item["speaker"] == target.split("-")[0] != other.split("-")[0]
        enroll = index[item["enroll"].numpy().tobytes()]
        assert enroll.split("-")[0] == item["speaker"] and enroll != target
        assert item["mix"].shape == item["target"].shape and item["target_index"] == 1


def test_dynamic_mix_levels(corpus):
    ds = DynamicMix(corpus, "train-100", segment=0.5, single=0)
    for i in range(60):
        item = ds[i]
        target, other = item["target"].numpy(), (item["mix"] - item["target"]).numpy()
        other = other[np.abs(other) > 0]  # a shorter interferer is zero-padded
        # tones have one level throughout, so the crops keep the levels of the whole utterances
        assert -33.1 < rms_db(target) < -24.9 and -5.1 < rms_db(target) - rms_db(other) < 5.1
    ds = DynamicMix(corpus, "train-100", segment=0.5, single=0, rel_db=0)
    item = ds[0]
    assert abs(rms_db(item["target"].numpy()) - rms_db((item["mix"] - item["target"]).numpy())) < 0.1


def test_dynamic_mix_is_deterministic_per_seed_and_epoch(corpus):
    def epoch(seed, e):
        ds = DynamicMix(corpus, "train-100", seed=seed, segment=0.5, enroll_segment=0.4)
        ds.set_epoch(e)
        return [(it["mixture_id"], it["mix"].numpy().tobytes(), it["enroll"].numpy().tobytes())
                for it in map(ds.__getitem__, range(len(ds)))]
    assert epoch(0, 0) == epoch(0, 0) and epoch(0, 1) == epoch(0, 1)
    assert epoch(0, 0) != epoch(0, 1) and epoch(0, 0) != epoch(1, 0)
    ds = DynamicMix(corpus, "train-100", segment=0.5)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate, num_workers=2)
    assert torch.equal(next(iter(loader))["mix"], collate([ds[i] for i in range(4)])["mix"])  # any worker, one item


def test_dynamic_mix_single_speaker_share(corpus):
    for single, low, high in ((0, 0, 0), (0.25, 25, 75), (1, 200, 200)):  # of 200 items; 0.25: within 4 sigma
        ds = DynamicMix(corpus, "train-100", segment=0.3, single=single, length=200, speed=(1, 1))
        alone = [it for it in map(ds.__getitem__, range(len(ds))) if len(sources_of(it)) == 1]
        assert low <= len(alone) <= high
        assert all(torch.equal(it["mix"], it["target"]) for it in alone)


def test_dynamic_mix_speed_is_shared_by_target_and_enrollment(corpus):
    files = {u: load_audio(p) for spk in DynamicMix(corpus, "train-100").utts.values() for u, p in spk}
    index = source_index(corpus, "train-100")
    ds = DynamicMix(corpus, "train-100", segment=None, single=1, length=40)
    plain = DynamicMix(corpus, "train-100", segment=None, single=1, length=40, speed=(1, 1))
    factors = []
    for i in range(len(ds)):
        item = ds[i]
        f = len(files[sources_of(item)[0]]) / len(item["target"])  # the played-back speed
        enroll = index[plain[i]["enroll"].numpy().tobytes()]  # the same draws, unperturbed: which file
        assert abs(len(files[enroll]) / len(item["enroll"]) - f) < 0.002
        factors.append(f)
    assert 0.899 < min(factors) < 0.95 and 1.05 < max(factors) < 1.101


def test_dynamic_mix_noise_and_errors(corpus, tmp_path):
    ds = DynamicMix(corpus, "train-100", mix_type="noisy", single=1, segment=0.5)
    noise = (ds[0]["mix"] - ds[0]["target"]).numpy()
    assert len(ds.noise) == 8 and -38.5 < rms_db(noise) < -29.5
    for bad in (dict(single=1.5), dict(speed=(1.2, 1.1)), dict(rel_db=-1), dict(mix_type="loud"),
                dict(absent=-0.1), dict(single=0.6, absent=0.6), dict(three=2), dict(lowpass=1.1), dict(light_noise=-1)):
        with pytest.raises(DataError) as e:
            DynamicMix(corpus, "train-100", **bad)
        assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="expected"):
        DynamicMix(tmp_path, "train-100")
    make_librimix(tmp_path / "one", "train-100", 1)
    with pytest.raises(DataError, match="two utterances"):
        DynamicMix(tmp_path / "one", "train-100")


def test_dynamic_mix_absent_target_is_silence_and_enrolls_someone_not_in_the_mix(corpus):
    ds = DynamicMix(corpus, "train-100", segment=0.5, single=0, absent=1, length=30, speed=(1, 1))
    for item in map(ds.__getitem__, range(len(ds))):
        ids = sources_of(item)
        assert ids[0] == "absent" and ids[1].split("-")[0] == item["speaker"]
        assert not item["target"].any() and item["mix"].abs().max() > 0.001  # only interferers speak
        assert all(u.split("-")[0] != item["speaker"] for u in ids[2:])
    shares = DynamicMix(corpus, "train-100", segment=0.3, single=0.2, absent=0.3, length=400, speed=(1, 1))
    kinds = [sources_of(it)[0] == "absent" for it in map(shares.__getitem__, range(len(shares)))]
    assert 80 <= sum(kinds) <= 160  # 0.3 of 400, within 4 sigma


def test_dynamic_mix_three_voices_are_three_speakers(corpus):
    ds = DynamicMix(corpus, "train-100", segment=None, single=0, three=1, length=30, speed=(1, 1))
    for item in map(ds.__getitem__, range(len(ds))):
        ids = sources_of(item)
        assert len(ids) == 3 and len({u.split("-")[0] for u in ids}) == 3
        assert item["target"].abs().max() > 0.001 and not torch.equal(item["mix"], item["target"])
    two = DynamicMix(corpus, "train-100", segment=None, single=0, three=0, length=30)
    assert all(len(sources_of(two[i])) == 2 for i in range(len(two)))


def band_share(x, cutoff, rate=16000):
    """Share of the energy of x above cutoff Hz."""
    power = np.abs(np.fft.rfft(x)) ** 2
    return power[np.fft.rfftfreq(len(x), 1 / rate) > cutoff].sum() / power.sum()


def test_dynamic_mix_lowpass_removes_the_top_band(tmp_path):
    """White-noise sources (energy up to 8 kHz): low-passed ones keep almost nothing above 7.5 kHz."""
    make_librimix(tmp_path, "train-100", 8)
    d = tmp_path / "Libri2Mix/wav16k/min/train-100"
    rng = np.random.default_rng(0)
    for f in [*d.glob("s1/*.wav"), *d.glob("s2/*.wav")]:
        sf.write(f, 0.1 * rng.standard_normal(len(load_audio(f))), 16000)
    full = DynamicMix(tmp_path, "train-100", segment=0.5, single=1, lowpass=0, length=20, speed=(1, 1))
    assert min(band_share(full[i]["target"].numpy(), 7500) for i in range(20)) > 0.03
    low = DynamicMix(tmp_path, "train-100", segment=0.5, single=1, lowpass=1, length=20, speed=(1, 1))
    for i in range(20):
        assert band_share(low[i]["target"].numpy(), 7500) < 1e-3 and band_share(low[i]["enroll"].numpy(), 7500) < 1e-3


def test_dynamic_mix_light_noise_is_well_below_the_target(corpus):
    ds = DynamicMix(corpus, "train-100", segment=0.5, single=1, light_noise=1, length=30)
    for item in map(ds.__getitem__, range(len(ds))):
        noise = (item["mix"] - item["target"]).numpy()
        assert 14.5 < rms_db(item["target"].numpy()) - rms_db(noise) < 30.5


def test_sources_only_split_asks_for_dynamic_mixing(corpus):
    for f in (corpus / "Libri2Mix/wav16k/min/train-100/mix_clean").glob("*.wav"):
        f.unlink()
    with pytest.raises(DataError, match="--dynamic-mix"):
        LibriMix(corpus, "train-100")
    assert len(DynamicMix(corpus, "train-100")) > 0
