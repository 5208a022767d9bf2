"""The 64×64 RGB VQGAN tokenizer (16×16 codes): shapes, code round trips, save/load, training, losses, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.requires("diffusers"), pytest.mark.usefixtures("one_thread")]

from mdlm.evaluation.reconstruction import evaluate_reconstruction
from mdlm.tokenizers.image import ImageTokenizer, load_image_tokenizer, save_pretrained_atomic
from mdlm.tokenizers.quantizers import FSQuantizer
from mdlm.tokenizers.vqgan import VQGANConfig, VQGANForImages
from mdlm.tokenizers.vqgan_losses import VQGANLossArguments, adaptive_weight, hinge_d_loss
from mdlm.tokenizers.vqgan_training import VQGANTrainingModule

ROOT = Path(__file__).resolve().parents[1]


def tiny(quantizer: str = "fsq") -> VQGANForImages:
    torch.manual_seed(0)
    cfg = VQGANConfig(block_out_channels=(8, 16, 16), norm_num_groups=4, quantizer=quantizer, codebook_size=64,
                      embedding_dim=4, fsq_levels=(4, 4, 3))
    return VQGANForImages(cfg).eval()


def rgb(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("quantizer", ["fsq", "l2ema", "ema"])
def test_encode_decode_shapes_16x16(quantizer):
    m = tiny(quantizer)
    assert isinstance(m, ImageTokenizer) and m.latent_shape == (16, 16)
    codes = m.encode(rgb(3))
    assert codes.shape == (3, 16, 16) and codes.dtype == torch.int64
    assert 0 <= int(codes.min()) and int(codes.max()) < m.codebook_size
    y = m.decode(codes)
    assert y.shape == (3, 3, 64, 64) and float(y.abs().max()) <= 1.0
    assert torch.equal(m.decode(codes.flatten(1)), y) and torch.equal(m.encode(rgb(3)), codes)


def test_fsq_every_code_round_trips():
    """Each of the Π L_i codes decodes to a grid point that quantises back to the same code."""
    q = FSQuantizer([8, 5, 5, 5])
    assert q.codebook_size == 1000
    codes = torch.arange(1000).view(1, 10, 100)
    v = q.lookup(codes)  # (1, 4, 10, 100) in [-1, 1]
    assert float(v.min()) == -1.0 and float(v.max()) <= 1.0
    lv, hw = q._levels(v), q._half_width(v)
    half, off = (lv - 1) * (1 - 1e-3) / 2, torch.where(lv % 2 == 0, 0.5, 0.0)
    z = torch.atanh((0.99 * v * hw + off) / half) - torch.atanh(off / half)  # a latent just inside each cell
    out = q(z)
    assert torch.equal(out.codes, codes) and torch.equal(q.codes_of(z), codes) and torch.allclose(out.quantized, v)


def test_l2ema_codes_round_trip_and_unit_norm():
    m = tiny("l2ema").train()
    m(rgb(4))  # data init + one EMA update
    q = m.quantizer.eval()
    assert torch.allclose(q.embedding.norm(dim=1), torch.ones(q.codebook_size), atol=1e-5)
    codes = torch.randint(0, q.codebook_size, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(q.codes_of(q.lookup(codes)), codes)


@pytest.mark.parametrize("quantizer", ["fsq", "l2ema"])
def test_save_load_codes_identical(tmp_path, quantizer):
    m = tiny(quantizer).train()
    m(rgb(4))  # touch EMA buffers (l2ema)
    m.eval()
    save_pretrained_atomic(m, str(tmp_path))
    m2 = load_image_tokenizer(str(tmp_path))
    assert isinstance(m2, VQGANForImages) and not m2.training
    x = rgb(3, seed=1)
    codes = m.encode(x)
    assert torch.equal(m2.encode(x), codes)
    assert torch.equal(m2.decode(codes), m.decode(codes))


def test_bad_images_one_clear_error():
    m = tiny()
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 64, 64\), got \(2, 1, 64, 64\)"):
        m.encode(torch.zeros(2, 1, 64, 64))  # grey where RGB is expected
    with pytest.raises(ValueError, match=r"got \(2, 3, 32, 32\)"):
        m.encode(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\[0, 48\)"):
        m.decode(torch.full((1, 16, 16), 48))
    with pytest.raises(ValueError, match="quantizer must be one of"):
        VQGANConfig(quantizer="kmeans")
    with pytest.raises(ValueError, match="not divisible"):
        VQGANConfig(image_size=66)


def test_training_steps_reduce_loss_with_gan_on():
    """A few optimiser steps on a generated RGB folder's images: the reconstruction loss falls, the GAN terms run."""

    torch.manual_seed(0)
    x = shapes_batch()
    module = VQGANTrainingModule(tiny().train(), VQGANLossArguments(disc_weight=0.5, disc_start_step=8, disc_channels=8))
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=3e-3, betas=(0.5, 0.9))
    l1s, logs = [], {}
    for step in range(16):
        loss, logs = module(x, step=step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        l1s.append(logs["rec_l1"])
    assert {"g_adv", "d_loss", "adaptive_weight"} <= logs.keys()  # discriminator active after step 8
    assert sum(l1s[-3:]) / 3 < 0.7 * sum(l1s[:3]) / 3


def shapes_batch(n: int = 8) -> torch.Tensor:
    """(n, 3, 64, 64) coloured squares/discs on white, in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    x = torch.ones(n, 3, 64, 64)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    for i in range(n):
        c = torch.rand(3, generator=g) * 2 - 1
        r = 10 + 10 * float(torch.rand((), generator=g))
        inside = ((yy - 32) ** 2 + (xx - 32) ** 2 < r * r) if i % 2 else ((yy - 32).abs() < r) & ((xx - 32).abs() < r)
        x[i][:, inside] = c[:, None]
    return x


def test_hinge_and_adaptive_weight():
    assert float(hinge_d_loss(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5]))) == pytest.approx(0.5 * (0.5 + 0.75))
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    rec, adv = (3 * w).sum(), (w * w).sum()  # gradients (3, 3) and (2, 4)
    lam = adaptive_weight(rec, adv, w)
    assert float(lam) == pytest.approx((18**0.5) / (20**0.5 + 1e-4), rel=1e-6) and not lam.requires_grad


def test_perceptual_loss_from_a_classifier_dir(tmp_path):
    from mdlm.evaluation.classifier import ImageClassifierCNN, ImageClassifierConfig
    from mdlm.tokenizers.vqgan_losses import load_perceptual

    torch.manual_seed(0)
    ImageClassifierCNN(ImageClassifierConfig(in_channels=3, image_size=64, channels=(8, 8), num_pools=2)).save_pretrained(
        str(tmp_path / "clf"))
    p = load_perceptual(str(tmp_path / "clf"), 3, 64).train()
    assert not p.net.training  # BatchNorm statistics stay frozen
    x = rgb(2)
    assert float(p(x, x)) == 0.0 and float(p(x, rgb(2, seed=3))) > 0.0
    with pytest.raises(ValueError, match="takes 3×64² images, the tokenizer 1×28²"):
        load_perceptual(str(tmp_path / "clf"), 1, 28)


def test_codebook_usage_reported():
    m = tiny()
    r = evaluate_reconstruction(m, rgb(4), batch_size=2)
    assert r["n_images"] == 4 and r["codebook_size"] == 48
    assert 1 <= r["codebook_codes_used"] <= 48 and 1.0 <= r["codebook_perplexity"] <= r["codebook_codes_used"] + 1e-9
    assert 0 < r["codebook_fraction_used"] <= 1 and r["psnr_db"] > 0
    if r["ssim"] is not None:
        assert -1 <= r["ssim"] <= 1


def run_script(monkeypatch, capsys, script: str, *args: str) -> tuple[int, str, str]:
    """Run ``script``'s ``main()`` in this process (as ``python script args``, from the repository root) →
    (exit status, stdout, stderr)."""
    from scripts import run_main

    return run_main(monkeypatch, capsys, script, *args, chdir=True)


@pytest.mark.slow
def test_train_vq_and_vq_eval_cli_on_rgb_folder(tmp_path, monkeypatch, capsys):
    """recipes/train_vq.py with vq64_tiny.yaml (3 steps, GAN on) then eval/vq_eval.py: files, JSON, one-line errors."""
    from rgb_fixtures import make_rgb_folder

    data = make_rgb_folder(tmp_path / "shapes", per_class=4)
    out, ev = tmp_path / "vq", tmp_path / "eval"
    code, _, err = run_script(monkeypatch, capsys, "recipes/train_vq.py", "--config", "recipes/configs/vq64_tiny.yaml",
                              "--dataset", str(data), "--max_steps", "3", "--disc_start_step", "1", "--output_dir", str(out))
    assert code == 0, err[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["latent_shape"] == [16, 16] and metrics["train_steps"] == 3 and metrics["codebook_size"] == 1024
    ev_args = ("--tokenizer", str(out), "--dataset", str(data), "--out-dir", str(ev), "--threads", "1")
    code, stdout, err = run_script(monkeypatch, capsys, "eval/vq_eval.py", *ev_args)
    assert code == 0, err[-2000:]
    line = json.loads(stdout.strip().splitlines()[-1])
    assert line["psnr_db"] == pytest.approx(metrics["psnr_db"]) and line["codebook_codes_used"] >= 1
    assert {p.name for p in ev.iterdir()} == {"metrics.json", "reconstructions.npz", "originals.npz", "reconstructions.png"}
    code, _, err = run_script(monkeypatch, capsys, "eval/vq_eval.py", *ev_args)
    assert code == 2 and err.startswith("error:") and "--overwrite" in err
    code, _, err = run_script(monkeypatch, capsys, "eval/vq_eval.py", *ev_args, "--channels", "1", "--overwrite")
    assert code == 2 and err.count("\n") == 1 and "expected images of shape (B, 3, 64, 64)" in err, err


def test_vqgan_loss_trains_the_small_vqvae_too():
    """--architecture vqvae --vqgan_loss true: the same loss module around the hand-written VQ-VAE (16×16 codes)."""
    from mdlm.tokenizers.image import VQConfig, VQModelForImages

    torch.manual_seed(0)
    vq = VQModelForImages(VQConfig(in_channels=3, image_size=64, hidden_channels=[8, 8], num_res_blocks=1,
                                   embedding_dim=4, codebook_size=32))
    module = VQGANTrainingModule(vq.train(), VQGANLossArguments(disc_weight=0.1, disc_channels=8))
    loss, logs = module(shapes_batch(4), step=0)
    loss.backward()
    assert vq.latent_shape == (16, 16) and {"rec_l1", "g_adv", "d_loss", "adaptive_weight"} <= logs.keys()
    assert vq.last_layer_weight.grad is not None and module.discriminator.net[0].weight.grad is not None


def test_small_vqvae_with_fsq_codes_and_reload(tmp_path):
    """VQConfig(quantizer="fsq"): the hand-written network on the FSQ grid; K and the latent width follow the levels."""
    from mdlm.tokenizers.image import VQConfig, VQModelForImages

    torch.manual_seed(0)
    vq = VQModelForImages(VQConfig(in_channels=3, image_size=64, hidden_channels=[8, 8], num_res_blocks=1,
                                   quantizer="fsq", fsq_levels=(4, 4, 3))).eval()
    assert vq.codebook_size == 48 and vq.config.embedding_dim == 3 and vq.latent_shape == (16, 16)
    x = rgb(2)
    codes = vq.encode(x)
    assert codes.shape == (2, 16, 16) and int(codes.max()) < 48
    save_pretrained_atomic(vq, str(tmp_path))
    vq2 = load_image_tokenizer(str(tmp_path))
    assert torch.equal(vq2.encode(x), codes) and torch.equal(vq2.decode(codes), vq.decode(codes))
    with pytest.raises(ValueError, match="quantizer must be one of"):
        VQConfig(quantizer="lfq")
