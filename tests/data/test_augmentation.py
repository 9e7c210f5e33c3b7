"""Augment stage: copies, recorded transforms, determinism, passthrough and quarantine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from swedish_transcriber.audio import read_audio, write_audio
from swedish_transcriber.data.augmentation import (
    AugmentParams,
    augment_train,
    build_compose,
    read_augment_params,
)
from swedish_transcriber.data.ingest import MeasureSettings
from swedish_transcriber.data.manifest import COLUMNS, conform, read_split
from swedish_transcriber.params import ParamsError
from swedish_transcriber.stage import main
from tests.dvc_stages import stage_args
from tests.manifests import manifest_row
from tests.messages import raises_naming
from tests.repo_params import PARAMS_FILE, REPO, repo_params, write_params

ALL_TRANSFORMS = [
    "TimeStretch",
    "PitchShift",
    "RoomSimulator",
    "AddGaussianSNR",
    "Gain",
    "Mp3Compression",
]


def speechlike(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 110 + 60 * rng.random()
    voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.15 * voiced * envelope + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def make_manifest(root: Path, names: list[str], corrupt: tuple[str, ...] = ()) -> pd.DataFrame:
    """Tiny clips (48 kHz MP3 / 22.05 kHz FLAC) and a train manifest pointing at them."""
    clips = root / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(names):
        path = clips / name
        if name in corrupt:
            path.write_bytes(b"ID3\x03\x00\x00\x00" + bytes(range(256)) * 8)
        else:
            sr = 48_000 if name.endswith(".mp3") else 22_050
            write_audio(path, speechlike(1.0 + 0.25 * i, sr, seed=i), sr)
        rows.append(
            manifest_row(
                "train",
                i,
                path=name,
                audio_file=str(path),
                sentence=f"Mening {i}.",
                client_id=f"speaker-{i % 2}",
                duration=1.0,
                silence_ratio=0.0,
                tsv_file="train.tsv",
            )
        )
    return conform(pd.DataFrame(rows))


def repo_transforms(p: float | None = None) -> dict[str, dict]:
    """The transforms of the repo's params.yaml, every ``p`` set to ``p`` if given."""
    transforms = read_augment_params(REPO / "params.yaml").transforms
    return {k: {**v, "p": p} if p is not None else v for k, v in transforms.items()}


def params(p: float = 1.0, **overrides) -> AugmentParams:
    """The repo's transforms with probability ``p`` (no background noise); 1 process, 1 copy."""
    transforms = repo_transforms(p)
    transforms["AddBackgroundNoise"]["p"] = 0.0
    base = AugmentParams(enabled=True, copies=1, seed=7, num_proc=1, transforms=transforms)
    return dataclasses.replace(base, **overrides)


def with_background(prm: AugmentParams, p: float, sounds_path: str) -> AugmentParams:
    transforms = {**prm.transforms}
    transforms["AddBackgroundNoise"] = {
        **transforms["AddBackgroundNoise"],
        "p": p,
        "sounds_path": sounds_path,
    }
    return dataclasses.replace(prm, transforms=transforms)


def run(tmp_path: Path, train: pd.DataFrame, prm: AugmentParams, name: str):
    out, quarantine = tmp_path / name / "augmented", tmp_path / name / "quarantine"
    result = augment_train(
        train, prm, out, quarantine, repo_params("ingest.measure", MeasureSettings)
    )
    return result, read_split(out, "train"), out, quarantine


def clip_bytes(out: Path) -> dict[str, bytes]:
    clips = out / "clips"
    return {p.name: p.read_bytes() for p in sorted(clips.iterdir())} if clips.is_dir() else {}


def test_copies_rows_columns_and_recorded_transforms(tmp_path):
    train = make_manifest(tmp_path, ["a.mp3", "b.flac"])
    result, manifest, out, _ = run(tmp_path, train, params(copies=2), "run")

    assert list(manifest.columns) == [*COLUMNS, "augmentation", "source_path"]
    assert manifest["path"].tolist() == [
        "a.mp3",
        "a.aug1.flac",
        "a.aug2.flac",
        "b.flac",
        "b.aug1.flac",
        "b.aug2.flac",
    ]
    assert result.clips_written == 4 and result.quarantine == []

    originals = manifest[manifest["source_path"] == ""].reset_index(drop=True)
    assert (originals["augmentation"] == "[]").all()
    pd.testing.assert_frame_equal(originals[list(COLUMNS)], train)

    copies = manifest[manifest["source_path"] != ""].set_index("path")
    assert copies["source_path"].tolist() == ["a.mp3", "a.mp3", "b.flac", "b.flac"]
    assert sorted(p.name for p in (out / "clips").iterdir()) == sorted(copies.index)
    for name, row in copies.iterrows():
        assert row["audio_file"] == (out / "clips" / name).as_posix()
        audio, sr = read_audio(row["audio_file"])
        assert sr == 16_000 and row["sample_rate"] == 16_000
        assert row["duration"] == pytest.approx(len(audio) / sr)
        assert row["peak"] == pytest.approx(float(np.abs(audio).max()), abs=1e-6)
        assert 0 < row["rms"] < row["peak"] <= 0.99 + 1e-4 and row["clipping_ratio"] == 0.0
        source = train.set_index("path").loc[row["source_path"]]
        assert row["sentence"] == source["sentence"] and row["tsv_row"] == source["tsv_row"]

        applied = json.loads(row["augmentation"])
        names = [a["transform"] for a in applied if a["transform"] != "PeakNormalize"]
        assert names == ALL_TRANSFORMS  # p=1: every transform, in params.yaml order
        # The values each transform drew, as audiomentations keeps them in .parameters.
        values = {a["transform"]: a["params"] for a in applied}
        assert 0.9 <= values["TimeStretch"]["rate"] <= 1.1
        assert -2 <= values["PitchShift"]["num_semitones"] <= 2
        assert 0.2 <= values["RoomSimulator"]["target_rt60"] <= 0.6
        assert values["RoomSimulator"]["max_order"] <= 3
        assert values["AddGaussianSNR"]["noise_std"] > 0
        assert 10 ** (-6 / 20) <= values["Gain"]["amplitude_ratio"] <= 10 ** (6 / 20)
        assert values["Mp3Compression"]["bitrate"] in (32, 40, 48, 56, 64, 80, 96)
        assert "should_apply" not in values["Gain"]
        # TimeStretch changes the length: the re-measured duration follows it.
        source_seconds = (
            len(read_audio(source["audio_file"])[0]) / read_audio(source["audio_file"])[1]
        )
        assert row["duration"] == pytest.approx(
            source_seconds / values["TimeStretch"]["rate"], abs=0.03
        )


@pytest.mark.slow  # augments the same clips four times
def test_same_seed_is_byte_identical_across_runs_and_process_counts(tmp_path):
    train = make_manifest(tmp_path, [f"c{i}.mp3" for i in range(5)])
    prm = params(0.5, copies=2)
    runs = {
        name: run(tmp_path, train, dataclasses.replace(prm, num_proc=n), name)
        for name, n in (("one", 1), ("again", 1), ("two", 2))
    }
    manifests = {k: m.drop(columns="audio_file") for k, (_, m, _, _) in runs.items()}
    clips = {k: clip_bytes(out) for k, (_, _, out, _) in runs.items()}
    assert len(clips["one"]) == 10
    for other in ("again", "two"):
        pd.testing.assert_frame_equal(manifests["one"], manifests[other])
        assert clips["one"] == clips[other]
    # p=0.5 over 10 copies: the chains differ from copy to copy.
    recorded = manifests["one"].loc[manifests["one"]["source_path"] != "", "augmentation"]
    assert recorded.nunique() == len(recorded)

    _, differ, out, _ = run(tmp_path, train, dataclasses.replace(prm, seed=8), "seed8")
    assert not differ["augmentation"].equals(runs["one"][1]["augmentation"])
    assert clip_bytes(out) != clips["one"]


def test_disabled_passes_train_through(tmp_path):
    train = make_manifest(tmp_path, ["a.mp3", "b.flac"])
    result, manifest, out, quarantine = run(tmp_path, train, params(enabled=False), "off")
    assert list(manifest.columns) == [*COLUMNS, "augmentation", "source_path"]
    pd.testing.assert_frame_equal(manifest[list(COLUMNS)], train)
    assert (manifest["augmentation"] == "[]").all() and (manifest["source_path"] == "").all()
    assert result.clips_written == 0 and not (out / "clips").exists()
    assert len(pd.read_parquet(quarantine / "quarantine.parquet")) == 0


def test_undecodable_clip_is_quarantined_naming_the_file(tmp_path):
    train = make_manifest(tmp_path, ["a.mp3", "broken.mp3", "b.flac"], corrupt=("broken.mp3",))
    result, manifest, out, quarantine = run(tmp_path, train, params(), "bad")
    assert manifest["path"].tolist() == ["a.mp3", "a.aug1.flac", "b.flac", "b.aug1.flac"]
    table = pd.read_parquet(quarantine / "quarantine.parquet")
    assert table["path"].tolist() == ["broken.mp3"]
    assert table["stage"].tolist() == ["augment"]
    reason = table["reason"].iloc[0]
    assert str(tmp_path / "clips" / "broken.mp3") in reason and "cannot decode" in reason
    assert "broken.mp3" in (quarantine / "quarantine.tsv").read_text(encoding="utf-8")
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["a.aug1.flac", "b.aug1.flac"]


def test_failed_augmentation_quarantines_the_copy_and_keeps_the_original(tmp_path, monkeypatch):
    from swedish_transcriber.data.augmentation import pool

    real_copy = pool.augment_copy

    def flaky(compose, audio, prm, path, copy):
        if path == "b.flac":
            raise RuntimeError("encoder exploded")
        return real_copy(compose, audio, prm, path, copy)

    monkeypatch.setattr(pool, "augment_copy", flaky)
    train = make_manifest(tmp_path, ["a.mp3", "b.flac"])
    _, manifest, out, quarantine = run(tmp_path, train, params(), "flaky")
    assert manifest["path"].tolist() == ["a.mp3", "a.aug1.flac", "b.flac"]
    table = pd.read_parquet(quarantine / "quarantine.parquet")
    assert table["path"].tolist() == ["b.aug1.flac"]
    assert table["source_path"].tolist() == ["b.flac"]
    reason = table["reason"].iloc[0]
    assert str(tmp_path / "clips" / "b.flac") in reason and "encoder exploded" in reason
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["a.aug1.flac"]

    # When no copy at all comes out, the setup is broken: the stage fails and writes nothing.
    with raises_naming(ValueError, tmp_path / "clips" / "b.flac", "encoder exploded"):
        run(tmp_path, train[train["path"] == "b.flac"], params(), "allfail")
    assert not (tmp_path / "allfail").exists() or not any((tmp_path / "allfail").iterdir())


def test_background_noise_from_a_folder_is_recorded(tmp_path):
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    rng = np.random.default_rng(3)
    write_audio(
        noise_dir / "hum.wav", (0.1 * rng.standard_normal(32_000)).astype(np.float32), 16_000
    )
    train = make_manifest(tmp_path, ["a.mp3"])
    prm = with_background(params(), 1.0, str(noise_dir))
    _, manifest, _, _ = run(tmp_path, train, prm, "bg")
    applied = {a["transform"]: a["params"] for a in json.loads(manifest["augmentation"].iloc[1])}
    assert applied["AddBackgroundNoise"]["noise_file_path"] == str(noise_dir / "hum.wav")
    assert 10 <= applied["AddBackgroundNoise"]["snr_db"] <= 30


def test_recorded_paths_under_the_working_folder_are_relative(tmp_path, monkeypatch):
    # The stage runs from the repo root: a noise file is recorded as data/..., not an absolute path
    noise_dir = tmp_path / "noise" / "b"
    noise_dir.mkdir(parents=True)
    (tmp_path / "noise" / "a").mkdir()
    tone = (0.1 * np.random.default_rng(3).standard_normal(32_000)).astype(np.float32)
    write_audio(noise_dir / "hum.wav", tone, 16_000)
    write_audio(tmp_path / "noise" / "a" / "buzz.wav", tone, 16_000)
    monkeypatch.chdir(tmp_path)
    compose = build_compose(with_background(params(0.0), 1.0, "noise"))
    # Files of sub-folders in sorted order, not the file system's.
    assert compose.transforms[0].sound_file_paths == [
        str(tmp_path / "noise" / "a" / "buzz.wav"),
        str(noise_dir / "hum.wav"),
    ]
    from swedish_transcriber.data.augmentation import augment_copy

    _, applied = augment_copy(compose, tone, params(), "x.flac", 1)
    assert applied[0]["params"]["noise_file_path"] in ("noise/a/buzz.wav", "noise/b/hum.wav")


def test_missing_background_folder_is_a_clear_error(tmp_path):
    train = make_manifest(tmp_path, ["a.mp3"])
    missing = tmp_path / "no-such-noise"
    prm = with_background(params(), 0.5, str(missing))
    with raises_naming(ParamsError, "augment.AddBackgroundNoise.sounds_path", missing):
        run(tmp_path, train, prm, "nobg")
    assert not (tmp_path / "nobg" / "augmented").exists()
    # Inactive (p=0) background noise does not look at the folder.
    run(tmp_path, train, with_background(params(), 0.0, str(missing)), "inactive")


def augment_params(path: Path, augment: dict) -> Path:
    # The order of the transforms is the order they are applied in (write_params keeps it).
    return write_params(path, {"augment": augment}, base=PARAMS_FILE)


def test_params_yaml_section_parses_in_order_and_builds(tmp_path):
    prm = read_augment_params(REPO / "params.yaml")
    assert list(prm.transforms) == [*ALL_TRANSFORMS[:3], "AddBackgroundNoise", *ALL_TRANSFORMS[3:]]
    everything = dataclasses.replace(prm, transforms=repo_transforms(0.5))
    everything.transforms["AddBackgroundNoise"]["p"] = 0.0
    compose = build_compose(everything)
    assert [type(t).__name__ for t in compose.transforms] == ALL_TRANSFORMS
    room = compose.transforms[2]
    assert (room.calculation_mode, room.max_order, room.leave_length_unchanged) == ("rt60", 3, True)


@pytest.mark.parametrize(
    ("change", "facts"),
    [  # the key, and the value when the key is there
        ({"copys": 2}, ["augment", "'copys'"]),
        ({"copies": -1}, ["augment.copies", -1]),
        ({"Gain": {"p": 0.5, "min_gain": 1.0}}, ["augment.Gain.min_gain"]),
        ({"Gain": {"min_gain_db": 1.0}}, ["augment.Gain", "'p'"]),
        ({"Gain": 0.5}, ["augment.Gain", 0.5]),
    ],
)
def test_params_yaml_errors_name_the_key(tmp_path, change, facts):
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["augment"]
    with raises_naming(ParamsError, "params.yaml", *facts):
        read_augment_params(augment_params(tmp_path / "params.yaml", {**raw, **change}))


@pytest.mark.parametrize(
    ("name", "kwargs", "key"),
    [
        # audiomentations' own checks decide; the error names the key it refused.
        ("Gain", {"p": 0.5, "min_gain_db": 9.0, "max_gain_db": 6.0}, "min_gain_db"),
        ("Gain", {"p": 1.5}, "p"),  # a bare assert in the library: found by elimination
        ("TimeStretch", {"p": 0.5, "min_rate": 0.01}, "min_rate"),
        ("Mp3Compression", {"p": 0.5, "min_bitrate": 4}, "min_bitrate"),
        ("RoomSimulator", {"p": 0.5, "calculation_mode": "sabine"}, "calculation_mode"),
        ("AddGaussianSNR", {"p": 0.5, "min_snr_db": "loud"}, "min_snr_db"),
    ],
)
def test_values_the_transform_refuses_are_params_errors(name, kwargs, key):
    prm = dataclasses.replace(params(), transforms={name: kwargs})
    with raises_naming(ParamsError, "params.yaml", f"augment.{name}.{key}", repr(kwargs[key])):
        build_compose(prm)


def test_stage_writes_final_paths_from_the_repo_root(tmp_path, monkeypatch):
    from stages import augment as stage
    from swedish_transcriber.data.manifest import write_split

    monkeypatch.chdir(tmp_path)
    train = make_manifest(tmp_path, ["a.mp3"])
    write_split(train, tmp_path / "data" / "validated", "train")
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["augment"]
    augment_params(tmp_path / "params.yaml", {**raw, "enabled": True, "num_proc": 1, "copies": 1})
    main(stage.run, stage_args("augment"))
    manifest = read_split(tmp_path / "data" / "augmented", "train")
    assert manifest["audio_file"].iloc[1] == "data/augmented/clips/a.aug1.flac"
    assert (tmp_path / "data" / "augmented" / "clips" / "a.aug1.flac").is_file()
    assert (tmp_path / "data" / "quarantine" / "augment" / "quarantine.parquet").is_file()
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".")]
