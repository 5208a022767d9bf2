"""The 64×64 RGB feature network and its scores: recipes/train_classifier.py on a generated folder of coloured
shapes with captions (tests/rgb_fixtures.py), classifier-FID, class accuracy and caption retrieval through
eval/fid.py, and the retrieval maths. CPU, seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rgb_fixtures import make_rgb_folder
from scripts import load_script, run_main
from test_image_sample_eval import load_eval_script

from mdlm.data.images import dataset_to_tensors, load_image_folder, save_samples_npz
from mdlm.evaluation.caption_retrieval import (
    caption_index,
    caption_retrieval_accuracy,
    prompt_category_accuracy,
)
from mdlm.evaluation.classifier import load_classifier
from mdlm.evaluation.fid import classifier_features, fid_between

ROOT = Path(__file__).resolve().parents[1]


def train_classifier(tmp_path: Path, monkeypatch, folder: Path) -> Path:
    """The recipe, in-process, a few steps on the folder (3×64×64, 2 classes)."""
    mod = load_script("recipes/train_classifier.py")
    w = mod.balanced_class_weights(torch.tensor([0, 0, 0, 1]), 3)  # each present class carries the same total weight
    assert torch.allclose(w * torch.tensor([3.0, 1.0, 0.0]), torch.tensor([4 / 3, 4 / 3, 0.0]))
    out = tmp_path / "clf"
    monkeypatch.setenv("MDLM_CACHE", str(tmp_path / "cache"))
    code, _, _ = run_main(
        monkeypatch, None, "recipes/train_classifier.py",
        "--config", str(ROOT / "recipes" / "configs" / "emoji_classifier_tiny.yaml"),
        "--dataset", str(folder), "--max_steps", "4", "--per_device_train_batch_size", "8", "--max_train_samples",
        "64", "--output_dir", str(out), "--disable_tqdm", "true", "--balanced_loss", "true")
    assert code == 0
    return out


def test_classifier_recipe_fid_and_caption_scores(tmp_path, monkeypatch, capsys):
    folder = make_rgb_folder(tmp_path / "shapes", per_class=8)
    clf_dir = train_classifier(tmp_path, monkeypatch, folder)
    metrics = json.loads((clf_dir / "metrics.json").read_text())
    assert metrics["train_steps"] == 4 and 0 <= metrics["test_balanced_accuracy"] <= 1
    assert set(metrics["test_recall_per_class"]) == {"circle", "square"}
    clf = load_classifier(str(clf_dir))
    assert (clf.config.in_channels, clf.config.image_size, clf.config.trained_on) == (3, 64, "shapes")

    data = load_image_folder(str(folder), image_size=64, channels=3)
    a, ya = dataset_to_tensors(data["train"])
    feats = classifier_features(clf, a)
    assert fid_between(feats, feats) < 1e-6
    assert fid_between(feats, classifier_features(clf, -a)) > 1e-3  # colour-inverted images are far

    # eval/fid.py: samples with their prompts; a perfect "generator" = the real images of the prompts
    caps = data["train"]["caption"]
    save_samples_npz(str(tmp_path / "fake.npz"), a, ya, caps)
    fid = load_eval_script("fid")
    out = fid.main(["--classifier", str(clf_dir), "--fake", str(tmp_path / "fake.npz"), "--real", f"{folder}:train",
                    "--retrieval-k", "2", "--device", "cpu"])
    assert out["metric"] == "classifier-FID (shapes CNN features)" and out["classifier_fid"] < 1e-3
    assert out["caption_category_accuracy"] == out["class_accuracy"]  # prompt's category = requested class here
    assert out["caption_retrieval_chance"] == 0.5
    # captions repeat ("red circle" ×3): the first image of a caption is its reference, so the score is < 1
    assert 0.3 <= out["caption_retrieval_accuracy"] <= 1.0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line)["n_images"] == len(a)
    with pytest.raises(ValueError, match="no reference image with that caption"):
        save_samples_npz(str(tmp_path / "odd.npz"), a[:2], ya[:2], ["purple hexagon", "red circle"])
        fid.main(["--classifier", str(clf_dir), "--fake", str(tmp_path / "odd.npz"), "--real", f"{folder}:all"])


def test_caption_retrieval_maths():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 8))  # one real image per caption
    target = np.arange(50)
    assert caption_retrieval_accuracy(ref, ref, target, k=10) == 1.0  # each image is its own prompt's picture
    assert caption_retrieval_accuracy(np.ones((50, 8)), np.ones((50, 8)), target, k=10) == 0.0  # ties are misses
    noise = rng.normal(size=(4000, 8))
    chance = caption_retrieval_accuracy(noise, ref, rng.integers(0, 50, 4000), k=5, seed=1)
    assert abs(chance - 0.2) < 0.03  # unrelated images score chance = 1/K
    with pytest.raises(ValueError, match="k must lie in"):
        caption_retrieval_accuracy(ref, ref, target, k=51)
    assert caption_index(["a", "b", "a"], ["a", "b"]).tolist() == [0, 1]
    with pytest.raises(ValueError, match="1 prompt"):
        caption_index(["a"], ["a", "zebra"])
    pred = torch.tensor([1, 0, 1])
    assert prompt_category_accuracy(pred, torch.tensor([1, 0]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
