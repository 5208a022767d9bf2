"""Colour image sources (mdlm/data/image_sources.py, image_catalogs.py): the emoji reader on a generated stand-in
of the npm package, user folders at any size with captions, the hash-stable split, the export / cache file and
the input errors. CPU, seconds; no npm / apt data needed."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from datasets import ClassLabel
from emoji_fixture import make_emoji_package
from PIL import Image
from rgb_fixtures import make_rgb_folder

from mdlm.data import image_sources as src
from mdlm.data.image_catalogs import read_emoji, read_folder, read_openclipart
from mdlm.data.images import dataset_to_tensors, load_image_dataset, load_image_folder


@pytest.fixture
def emoji_env(tmp_path, monkeypatch):
    pkg = make_emoji_package(tmp_path / "npm")
    monkeypatch.setenv("MDLM_EMOJI_DIR", str(pkg))
    monkeypatch.setenv("MDLM_CACHE", str(tmp_path / "cache"))
    return pkg


def test_emoji_catalogue_names_categories_and_skin_tones(emoji_env):
    cat = read_emoji()
    assert cat.class_names == ["Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink"]  # sort order
    captions = [i.caption for i in cat.items]
    assert len(cat.items) == 11  # 9 pictures + 2 skin tones; no Component swatch, no entry without a Google image
    assert "waving hand sign, dark skin tone" in captions and "waving hand sign, light skin tone" in captions
    assert not any("fitzpatrick" in c or "no google" in c for c in captions)
    wave = [i for i in cat.items if i.caption.startswith("waving hand")]
    assert {i.group for i in wave} == {"wave"} and len({i.key for i in wave}) == 3
    assert wave[0].keywords == ("wave", "wave alias", "hand fingers open")
    assert len(read_emoji(skin_tones=False).items) == 9


def test_emoji_dataset_schema_range_and_white_background(emoji_env):
    ds = load_image_dataset("emoji", 64, 3)
    assert set(ds) == {"train", "test"} and len(ds["train"]) + len(ds["test"]) == 11
    f = ds["train"].features
    assert isinstance(f["label"], ClassLabel) and f["label"].names[0] == "Smileys & Emotion"
    assert tuple(f["pixel_values"].shape) == (3, 64, 64) and f["pixel_values"].dtype == "float32"
    x, _ = dataset_to_tensors(ds["train"])
    assert x.shape[1:] == (3, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert bool((x[:, :, 0, 0] == 1.0).all())  # transparent corner composited on white
    row = ds["train"][0]
    assert isinstance(row["caption"], str) and row["caption"] and isinstance(row["keywords"], list)
    assert row["category"] == f["label"].names[row["label"]]
    with pytest.raises(ValueError, match="3 channel"):
        load_image_dataset("emoji", 64, 1)


def test_split_is_stable_disjoint_and_keeps_variants_together(emoji_env, tmp_path):
    ds = load_image_dataset("emoji", 64, 3)
    train, test = set(ds["train"]["key"]), set(ds["test"]["key"])
    assert train and test and not train & test
    wave_splits = {k in test for k in train | test if k.startswith("wave")}
    assert len(wave_splits) == 1  # every skin tone of one emoji in one split
    # the split is a function of each key: file order and extra items do not move anything
    groups = [f"g{i}" for i in range(400)]
    base = src.held_out_mask(groups, 0.1)
    shuffled = groups[:]
    random.Random(0).shuffle(shuffled)
    again = dict(zip(shuffled, src.held_out_mask(shuffled, 0.1)))
    assert all(again[g] == t for g, t in zip(groups, base))
    grown = src.held_out_mask(groups + [f"new{i}" for i in range(100)], 0.1)
    assert np.array_equal(grown[:400], base)
    assert 20 < base.sum() < 60  # ≈ 10 % of 400


def test_export_round_trip_cache_and_overwrite(emoji_env, tmp_path, monkeypatch, capsys):
    out = tmp_path / "emoji64.npz"
    src.main(["export", "emoji", str(out)])
    info = json.loads(capsys.readouterr().out)
    assert info["train"] + info["test"] == 11 and info["bytes"] == out.stat().st_size
    back = load_image_dataset(str(out), 64, 3)
    live = load_image_dataset("emoji", 64, 3)  # from the cache written by the export
    assert back["test"]["caption"] == live["test"]["caption"]
    assert np.array_equal(dataset_to_tensors(back["train"])[0].numpy(), dataset_to_tensors(live["train"])[0].numpy())
    monkeypatch.setattr(src, "decode_catalog", lambda *a, **k: pytest.fail("decoded again despite the cache"))
    load_image_dataset("emoji", 64, 3)
    with pytest.raises(ValueError, match="exists; pass --overwrite"):
        src.main(["export", "emoji", str(out)])
    with pytest.raises(ValueError, match="not 32×32"):
        load_image_dataset(str(out), 32, 3)


def test_missing_package_names_the_install_command_or_uses_the_carried_export(emoji_env, tmp_path, monkeypatch):
    src.main(["export", "emoji", str(tmp_path / "emoji64.npz")])
    monkeypatch.setenv("MDLM_EMOJI_DIR", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("mdlm.data.image_catalogs.EMOJI_DEFAULT_PREFIX", str(tmp_path / "none"))
    with pytest.raises(ValueError, match="npm install --prefix .* emoji-datasource-google@16.0.0"):
        read_emoji()
    monkeypatch.setenv("MDLM_IMAGE_DATA", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="npm install"):
        load_image_dataset("emoji", 64, 3)
    monkeypatch.setenv("MDLM_IMAGE_DATA", str(tmp_path))  # the GPU machine: no npm, the export carried along
    assert len(load_image_dataset("emoji", 64, 3)["test"]) + len(load_image_dataset("emoji", 64, 3)["train"]) == 11
    with pytest.raises(ValueError, match="apt-get install openclipart-png"):
        read_openclipart(str(tmp_path / "no"))


def test_rgb_folder_any_size_captions_and_subfolder_classes(tmp_path):
    root = make_rgb_folder(tmp_path / "shapes", per_class=6)  # sizes 64 / 80 / 48, metadata.jsonl captions
    ds = load_image_folder(str(root), image_size=64, channels=3, cache_dir=str(tmp_path / "c"))
    assert ds["train"].features["label"].names == ["circle", "square"]  # kept although metadata.jsonl exists
    rows = list(ds["train"]) + list(ds["test"])
    assert len(rows) == 12 and len(ds["test"]) >= 1
    for r in rows:
        colour, shape = r["caption"].split()
        assert shape == ds["train"].features["label"].names[r["label"]] and colour in ("red", "blue", "green")
        assert np.asarray(r["pixel_values"]).shape == (3, 64, 64)
    x, _ = dataset_to_tensors(ds["train"])
    assert bool((x[:, :, 0, 0] == 1.0).all())  # transparent corners → white


def test_folder_with_own_split_dirs(tmp_path):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (70, 50), (10, 20, 30)).save(tmp_path / split / cls / "x.png")
    cat = read_folder(str(tmp_path))
    assert cat.class_names == ["a", "b"] and {i.split for i in cat.items} == {"train", "test"}
    ds = load_image_folder(str(tmp_path), image_size=32, channels=3, cache_dir="")
    assert len(ds["train"]) == len(ds["test"]) == 2


def test_pad_keeps_the_whole_drawing(tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (128, 32), (255, 0, 0)).save(wide)
    crop = src.decode_image(str(wide), 32, fit="crop")
    pad = src.decode_image(str(wide), 32, fit="pad")
    assert (crop[0] > 200).all() and (crop[1] < 50).all()  # all red: the middle square
    assert tuple(pad[:, 0, 16]) == (255, 255, 255) and tuple(pad[:, 16, 16]) == (255, 0, 0)  # white band above


def test_bad_inputs_are_one_clear_error(tmp_path):
    (tmp_path / "cls").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "cls" / "ok.png")
    (tmp_path / "cls" / "broken.png").write_text("this is not a PNG")
    with pytest.raises(ValueError, match=r"broken\.png: not an image file"):
        load_image_folder(str(tmp_path), image_size=16, channels=3, cache_dir="")
    grey = tmp_path / "grey.png"
    Image.new("L", (16, 16), 128).save(grey)
    with pytest.raises(ValueError, match=r"grey\.png: a greyscale image \(PIL mode L\) where RGB is expected"):
        src.decode_image(str(grey), 16, allow_grey=False)
    assert src.decode_image(str(grey), 16).shape == (3, 16, 16)  # converted when allowed
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(str(tmp_path / "missing"), image_size=16, channels=3)
    with pytest.raises(ValueError, match="unknown image dataset"):
        load_image_dataset("no-such-source")
    with pytest.raises(ValueError, match=r"emoji64\.npz': no such file \(export one with"):
        load_image_dataset(str(tmp_path / "emoji64.npz"))  # a missing export says so, not "unknown data set"
    bad = tmp_path / "samples.npz"
    np.savez(bad, images=np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="not an exported image data set"):
        src.load_exported(str(bad))
