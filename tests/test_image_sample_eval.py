"""Scoring image samples (mdlm/evaluation/image_scoring.py, eval/image_sample_eval.py): the ``recon`` reference (VQ reconstructions of the test images), several
references at once, determinism and input errors — on a random (untrained) 8×8 image checkpoint, scikit-learn's
digits and a random classifier. CPU, seconds.

``make_image_checkpoint`` / ``make_classifier`` / ``load_eval_script`` are shared with tests/test_ablate_image.py
and tests/test_bench_image.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from scripts import load_script

import mdlm.evaluation.image_scoring as isc
from mdlm.cli import UserError

ROOT = Path(__file__).resolve().parents[1]
CODES, CLASSES = 16, 10  # the random VQ's codebook; digits' classes


def load_eval_script(name: str):
    """The module of the command-line script eval/<name>.py (its ``main`` not run; tests/scripts.py's loader): the
    scripts are tested in-process, as a subprocess would re-import torch (slow)."""
    return load_script(f"eval/{name}.py")


def make_image_checkpoint(path: Path, seed: int = 0, cfg_scale: float = 1.0) -> Path:
    """A self-contained image checkpoint without training: a random 1-layer MDM over [class] + 4×4 codes of
    a random 8×8 VQ (codebook 16, 10 classes), sampler defaults as recipes/train_image.py writes them."""
    import mdlm
    from mdlm.data.images import ImageTokenLayout
    from mdlm.generation_defaults import save_generation_defaults
    from mdlm.pipelines.image import VQ_SUBDIR, image_config_fields
    from mdlm.tokenizers.image import VQConfig, VQModelForImages

    torch.manual_seed(seed)
    layout = ImageTokenLayout(CODES, CLASSES)
    vq = VQModelForImages(VQConfig(image_size=8, hidden_channels=[8], num_res_blocks=1, embedding_dim=4,
                                   codebook_size=CODES))
    vq.save_pretrained(path / VQ_SUBDIR)
    cfg = mdlm.MDLMConfig(vocab_size=layout.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=1 + 16, mask_token_id=layout.mask_id)
    model = mdlm.MDLMForMaskedLM(cfg)
    for k, v in image_config_fields(layout, (4, 4), [str(c) for c in range(CLASSES)], str(path / VQ_SUBDIR),
                                    "0" * 64).items():
        setattr(model.config, k, v)
    model.save_pretrained(path)
    save_generation_defaults(str(path), {"mask_token_id": layout.mask_id, "steps": 4, "schedule": "cosine",
                                         "temperature": 1.0, "remasking": "low_confidence", "confidence": "prob",
                                         "choice_temperature": 2.0, "cfg_scale": cfg_scale, "cfg_interval": [0.0, 1.0]})
    return path


def make_classifier(path: Path, seed: int = 0) -> Path:
    """A random CNN classifier of 8×8 images (its features are a fixed random map: enough for FID maths)."""
    from mdlm.evaluation.classifier import ImageClassifierCNN, ImageClassifierConfig

    torch.manual_seed(seed)
    ImageClassifierCNN(ImageClassifierConfig(image_size=8, channels=[4, 8], feature_dim=8)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ise():
    return load_eval_script("image_sample_eval")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("ise")
    return make_image_checkpoint(d / "ckpt"), make_classifier(d / "clf")


def _argv(ckpt: Path, clf: Path, *extra: str) -> list[str]:
    return ["--model", str(ckpt), "--classifier", str(clf), "--dataset", "digits", "--device", "cpu",
            "--batch-size", "64", *extra]


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_recon_reference_scores_the_reconstructions_themselves_at_zero(assets):
    ckpt_dir, clf_dir = assets
    from mdlm.data.images import load_image_dataset
    from mdlm.evaluation.classifier import load_classifier

    ckpt = isc.load_image_checkpoint(str(ckpt_dir), "cpu")
    scorer = isc.ImageScorer(load_classifier(str(clf_dir), "cpu"), load_image_dataset("digits"), max_reference=80,
                             batch_size=32, dataset="digits")
    test = scorer.images("test")
    recon = isc.reconstruct(ckpt.vq, test, 32)
    assert test.shape == recon.shape == (80, 1, 8, 8)
    assert not torch.allclose(recon, test, atol=1e-2)  # a random VQ reconstructs badly
    labels = torch.zeros(80, dtype=torch.long)
    s = scorer.score(recon, labels, ["recon", "test"], ckpt)
    assert s["fid"]["recon"] < 1e-6  # the same images as the reference: FID 0
    assert s["fid"]["test"] > 1e-3  # the tokenizer's error is what 'recon' takes out
    s_real = scorer.score(test, labels, ["test", "recon"], ckpt)
    assert s_real["fid"]["test"] < 1e-6 and s_real["fid"]["recon"] == pytest.approx(s["fid"]["test"], rel=1e-6)


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_cli_reports_every_reference_and_the_recon_floor(ise, assets, tmp_path, capsys):
    ckpt, clf = assets
    out = tmp_path / "e.json"
    # the reference points are unpaired: half B of the test split against half A (≤ --max-reference each)
    res = ise.main(_argv(ckpt, clf, "--steps", "1", "2", "--num-per-class", "5", "--max-reference", "50",
                         "--reference", "recon", "test", "--json", str(out)))
    printed = capsys.readouterr().out
    assert "FID vs recon" in printed and "FID vs test" in printed and "VQ reconstructions of digits:test" in printed
    assert "classifier-KID" in printed and "real_half_b" in printed
    assert res["references"] == ["recon", "test"] and res["n_probe"] == 50
    pts = res["reference_points"]
    assert set(pts["test"]) == {"real_half_b", "vq_recon_half_b", "real_train_seen"}
    assert res["vq_reconstruction_fid"] == pts["recon"]["vq_recon_half_b"]["fid"]  # the headline reference's point
    assert [r["steps"] for r in res["results"]] == [1, 2]
    for r in res["results"]:
        assert set(r["classifier_fid_by_reference"]) == {"recon", "test"}
        assert r["classifier_fid"] == r["classifier_fid_by_reference"]["recon"]
        assert r["classifier_kid"] == r["kid_by_reference"]["recon"]["kid"] and set(r["kid_by_reference"]) == {"recon", "test"}
        assert r["nfe"] == 2 * r["steps"]  # the checkpoint's CFG: one unconditional pass per step
        assert r["n_images"] == 50 and 0 <= r["class_accuracy"] <= 1
    assert json.loads(out.read_text())["results"] == res["results"]
    with pytest.raises(UserError, match="--overwrite"):  # an existing --json is not replaced silently
        ise.parse_args(_argv(ckpt, clf, "--json", str(out)))
    with pytest.raises(UserError, match="--steps: must be ≥ 1, got 0"):
        ise.parse_args(_argv(ckpt, clf, "--steps", "0"))


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_same_seed_same_scores_and_overrides_apply(assets):
    ckpt_dir, clf_dir = assets
    from mdlm.data.images import load_image_dataset
    from mdlm.evaluation.classifier import load_classifier

    ckpt = isc.load_image_checkpoint(str(ckpt_dir), "cpu")
    scorer = isc.ImageScorer(load_classifier(str(clf_dir), "cpu"), load_image_dataset("digits"), max_reference=60,
                             batch_size=64, dataset="digits")

    def row(**overrides):
        return isc.sample_and_score(ckpt, scorer, steps=3, overrides=overrides, num_per_class=3, seed=7, batch_size=64,
                                    references=["recon"])

    a, b = row(), row()
    assert a["classifier_fid"] == b["classifier_fid"] and a["class_accuracy"] == b["class_accuracy"]
    off = row(cfg_scale=0.0, sampler="moment", choice_temperature=1.0)
    assert off["nfe"] == 3 and a["nfe"] == 6
    assert off["sampler"]["sampler"] == "moment" and off["sampler"]["cfg_scale"] == 0.0


def test_bad_paths_are_one_clear_error(ise, assets, tmp_path):
    ckpt, clf = assets
    with pytest.raises(ValueError, match="--model .* is not a directory"):
        ise.main(_argv(tmp_path / "missing", clf, "--steps", "1"))
    with pytest.raises(ValueError, match="--classifier .* is not a directory"):
        ise.main(_argv(ckpt, tmp_path / "missing", "--steps", "1"))
