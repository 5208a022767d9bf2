"""Fréchet distance maths, the classifier, and the eval/fid.py command line."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from mdlm.evaluation.classifier import (
    ImageClassifierCNN,
    ImageClassifierConfig,
    accuracy,
    class_accuracies,
    load_classifier,
)
from mdlm.evaluation.fid import (
    classifier_fid,
    feature_fid,
    frechet_distance,
    gaussian_stats,
    sqrtm_psd,
)
from mdlm.evaluation.reconstruction import psnr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_identical_sets_give_zero():
    f = np.random.default_rng(0).normal(size=(500, 16))
    assert abs(feature_fid(f, f)) < 1e-8


def test_shift_adds_squared_norm():
    f = np.random.default_rng(1).normal(size=(400, 8))
    shift = np.arange(8) / 4.0
    assert abs(feature_fid(f, f + shift) - float(shift @ shift)) < 1e-8
    assert feature_fid(f, f + 0.1) > 0


def test_closed_form_diagonal_gaussians():
    # diagonal Σ: d² = ||μ₁-μ₂||² + Σ (√a - √b)²
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expect = 1.0 + 4.0 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0.0
    assert abs(frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) - expect) < 1e-10
    # 1-D: (m1-m2)² + (s1-s2)²
    assert abs(frechet_distance(np.array([0.5]), np.array([[4.0]]), np.array([0.0]), np.array([[1.0]])) - 1.25) < 1e-12


def test_non_commuting_covariances_match_scipy():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    ref = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2))))
    assert abs(frechet_distance(mu1, s1, mu2, s2) - ref) < 1e-8
    # swapping the two Gaussians gives the same distance
    assert abs(frechet_distance(mu2, s2, mu1, s1) - ref) < 1e-8


def test_singular_covariance_and_sqrt():
    s = np.diag([4.0, 0.0, 1e-20])
    r = sqrtm_psd(s)
    assert np.allclose(r @ r, s, atol=1e-12)
    # rank-deficient features (N < d) still give a finite, non-negative distance
    f = np.random.default_rng(3).normal(size=(5, 20))
    d = feature_fid(f, f[::-1] + 1.0)
    assert np.isfinite(d) and d > 0
    mu, cov = gaussian_stats(f)
    assert mu.shape == (20,) and cov.shape == (20, 20)
    with pytest.raises(ValueError):
        gaussian_stats(f[:1])


def test_psnr():
    x = torch.zeros(2, 1, 4, 4)
    y = x.clone()
    y[1] += 0.2  # MSE 0.04 on [-1, 1] → 10·log10(4 / 0.04) = 20 dB
    p = psnr(y, x)
    assert abs(float(p[1]) - 20.0) < 1e-5 and float(p[0]) >= 100.0


def load_eval_fid():
    from test_image_sample_eval import load_eval_script

    return load_eval_script("fid")


def tiny_classifier() -> ImageClassifierCNN:
    torch.manual_seed(0)
    return ImageClassifierCNN(ImageClassifierConfig(channels=[4, 8], feature_dim=16)).eval()


def test_classifier_features_fid_and_accuracy(tmp_path):
    clf = tiny_classifier()
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    feats = clf.features(x)
    assert feats.shape == (64, 16)
    assert classifier_fid(clf, x, x) < 1e-6
    assert classifier_fid(clf, x, -x) > 0
    pred = clf(x).logits.argmax(-1)
    assert accuracy(clf, x, pred) == 1.0
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        clf.features(torch.zeros(2, 1, 32, 32))
    clf.save_pretrained(str(tmp_path))
    back = load_classifier(str(tmp_path))
    assert torch.equal(back.features(x), feats)
    assert back.config.class_names == [str(i) for i in range(10)]


def test_balanced_accuracy_exposes_a_classifier_that_answers_the_majority_class():
    class Majority(torch.nn.Module):  # predicts class 0 for every image
        config = ImageClassifierConfig(num_classes=3)

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):  # (N, C, H, W) → logits (N, 3)
            return type("Out", (), {"logits": torch.tensor([1.0, 0.0, 0.0]).expand(x.shape[0], 3)})()

    labels = torch.tensor([0] * 8 + [1, 2])  # 80 % of the images are class 0
    plain, balanced = class_accuracies(Majority(), torch.zeros(10, 1, 4, 4), labels)
    assert plain == pytest.approx(0.8) and balanced == pytest.approx(1 / 3)  # recall 1, 0, 0


def test_eval_fid_cli(tmp_path, capsys):
    from mdlm.data.images import save_samples_npz

    clf = tiny_classifier()
    clf.save_pretrained(str(tmp_path / "clf"))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 28, 28, generator=g) * 2 - 1
    labels = clf(x).logits.argmax(-1)
    save_samples_npz(str(tmp_path / "samples.npz"), x, labels)
    save_samples_npz(str(tmp_path / "ref.npz"), torch.rand(40, 1, 28, 28, generator=g) * 2 - 1)
    args = ["--classifier", str(tmp_path / "clf"), "--images", str(tmp_path / "samples.npz"),
            "--reference", str(tmp_path / "ref.npz"), "--device", "cpu"]
    load_eval_fid().main(args)  # the script's main, in-process (a subprocess would re-import torch: slow)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["metric"] == "classifier-FID (Fashion-MNIST CNN features)"
    assert out["classifier_fid_fmnist"] > 0 and out["n_images"] == 40 and out["n_reference"] == 40
    assert out["class_accuracy"] > 0.9  # uint8 rounding may flip a borderline prediction
    assert 0.8 < out["class_accuracy_balanced"] <= 1  # mean per-class recall, printed beside it
    # KID always printed: both sets are uniform noise (one distribution), so its mean is within noise of 0
    assert out["kid_subsets"] == 100 and out["kid_subset_size"] == 20 and out["classifier_kid_std"] > 0
    assert abs(out["classifier_kid"]) < 3 * out["classifier_kid_std"]
    with pytest.raises(ValueError, match="--classifier .* is not a directory"):  # not a hub name: no network retries
        load_eval_fid().main(args[:1] + [str(tmp_path / "nope")] + args[2:])


def test_max_reference_draws_across_a_class_ordered_set(tmp_path, capsys):
    from mdlm.evaluation.image_sets import ImageSet

    x = torch.arange(40, dtype=torch.float32).view(40, 1, 1, 1).expand(40, 1, 2, 2)
    labels = torch.arange(40) // 10  # stored in class order, like the emoji export
    s = ImageSet(x, labels, [f"c{i}" for i in range(40)], "ordered")
    a, b = s.sample(12, seed=0), s.sample(12, seed=0)
    assert torch.equal(a.images, b.images) and len(set(a.labels.tolist())) > 2  # seeded, not the first 12 (class 0)
    assert a.captions == [f"c{int(v)}" for v in a.images[:, 0, 0, 0]]  # captions follow their images
    assert s.sample(None) is s and s.sample(40) is s


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_eval_fid_unpaired_halves_and_vq_floor(tmp_path, capsys):
    from test_image_sample_eval import make_classifier, make_image_checkpoint

    clf, ckpt = make_classifier(tmp_path / "clf"), make_image_checkpoint(tmp_path / "ckpt")
    base = ["--classifier", str(clf), "--real", "digits:test-a", "--device", "cpu", "--kid-subsets", "10"]
    mod = load_eval_fid()
    real = mod.main(base + ["--fake", "digits:test-b"])
    recon = mod.main(base + ["--fake", "digits:test-b", "--vq", str(ckpt / "vq")])
    capsys.readouterr()
    assert real["n_images"] == real["n_reference"] == recon["n_images"] > 100  # two halves of digits' test split
    assert recon["fake"] == "VQ reconstructions of digits:test-b" and recon["kid_subsets"] == 10
    assert abs(real["classifier_kid"]) < 3 * real["classifier_kid_std"]  # unpaired real vs real: ≈ 0
    assert recon["classifier_kid"] > real["classifier_kid"] + 3 * recon["classifier_kid_std"]  # a random VQ: far
    with pytest.raises(ValueError, match="--vq .* is not a directory"):
        mod.main(base + ["--fake", "digits:test-b", "--vq", str(tmp_path / "nope")])


def test_eval_fid_inception_needs_torchvision(tmp_path):
    try:
        import torchvision  # noqa: F401

        pytest.skip("torchvision is installed")
    except ImportError:
        pass
    mod = load_eval_fid()
    from mdlm.data.images import save_samples_npz

    save_samples_npz(str(tmp_path / "s.npz"), torch.zeros(4, 1, 28, 28))
    with pytest.raises(ValueError, match="torchvision"):  # one error line (UserError), not a traceback
        mod.main(["--images", str(tmp_path / "s.npz"), "--reference", str(tmp_path / "s.npz"),
                  "--inception", str(tmp_path / "none.pth"), "--device", "cpu"])
