"""VQ-VAE tokenizer: shapes, quantiser guarantees, EMA maths, dead-code restart, save/load, loader."""

from __future__ import annotations

import json

import pytest
import torch

from mdlm.tokenizers.image import (
    EMAQuantizer,
    ImageTokenizer,
    VQConfig,
    VQModelForImages,
    codebook_usage,
    load_image_tokenizer,
    save_pretrained_atomic,
)


def tiny(image_size: int = 28, k: int = 64) -> VQModelForImages:
    torch.manual_seed(0)
    cfg = VQConfig(image_size=image_size, hidden_channels=[8, 16], num_res_blocks=1, embedding_dim=8, codebook_size=k)
    return VQModelForImages(cfg).eval()


def test_encode_decode_shapes_and_protocol():
    m = tiny()
    assert isinstance(m, ImageTokenizer)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    codes = m.encode(x)
    assert codes.shape == (3, 7, 7) and codes.dtype == torch.int64 and m.latent_shape == (7, 7)
    assert 0 <= int(codes.min()) and int(codes.max()) < m.codebook_size
    y = m.decode(codes)
    assert y.shape == (3, 1, 28, 28) and float(y.abs().max()) <= 1.0
    assert torch.equal(m.decode(codes.flatten(1)), y)  # (B, h·w) accepted
    assert torch.equal(m.encode(x), codes)  # deterministic, eval never touches the codebook


def test_wrong_inputs_raise():
    m = tiny()
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        m.encode(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        m.encode(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        m.decode(torch.full((1, 7, 7), 64))
    with pytest.raises(ValueError, match=r"\(B, 7, 7\)"):
        m.decode(torch.zeros(1, 6, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="not divisible"):
        VQConfig(image_size=28, hidden_channels=[8, 8, 8])


def test_quantizer_round_trip_on_codebook_vectors():
    """What IS guaranteed: a codebook vector's nearest code is itself (distinct codes), so
    nearest(lookup(codes)) == codes. decode→encode through the conv nets is not an identity."""
    torch.manual_seed(1)
    q = EMAQuantizer(50, 6, decay=0.99, eps=1e-5, dead_code_threshold=1.0).eval()
    q.embedding.copy_(torch.randn(50, 6))
    codes = torch.randint(0, 50, (4, 3, 5))
    vecs = q.lookup(codes)  # (B, D, h, w)
    assert vecs.shape == (4, 6, 3, 5)
    flat = vecs.permute(0, 2, 3, 1).reshape(-1, 6)
    assert torch.equal(q.nearest(flat).view(4, 3, 5), codes)
    out = q(vecs)  # eval forward: same codes, zero commitment, no EMA change
    assert torch.equal(out.codes, codes) and float(out.commitment_loss) < 1e-10
    assert torch.allclose(out.quantized, vecs)


def test_straight_through_gradient_and_commitment():
    q = EMAQuantizer(4, 2, 0.99, 1e-5, 0.0).eval()
    q.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0], [3.0, 3.0]]))
    z = torch.tensor([[0.9, 1.2]]).view(1, 2, 1, 1).requires_grad_(True)
    out = q(z)
    assert out.codes.item() == 1
    assert torch.allclose(out.commitment_loss, torch.tensor((0.1**2 + 0.2**2) / 2))
    out.quantized.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through: identity gradient


def test_ema_update_matches_formula():
    k, d, g, eps = 3, 2, 0.9, 1e-5
    q = EMAQuantizer(k, d, g, eps, dead_code_threshold=0.0).train()
    e0 = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 5.0]])
    q.embedding.copy_(e0)
    q.ema_embed_sum.copy_(e0)
    q.ema_cluster_size.fill_(1.0)
    q.initialized.fill_(True)
    z = torch.tensor([[0.5, 0.0], [0.0, 1.0], [9.0, 9.0]])  # codes 0, 0, 1
    q(z.view(1, 3, 2).permute(0, 2, 1).unsqueeze(-1))  # (1, D, 3, 1)
    n = torch.tensor([1 * g + (1 - g) * 2, 1 * g + (1 - g) * 1, 1 * g])
    m = torch.stack([e0[0] * g + (1 - g) * (z[0] + z[1]), e0[1] * g + (1 - g) * z[2], e0[2] * g])
    smoothed = (n + eps) / (n.sum() + k * eps) * n.sum()
    assert torch.allclose(q.ema_cluster_size, n)
    assert torch.allclose(q.embedding, m / smoothed[:, None], atol=1e-6)


def test_dead_code_restart_moves_code_onto_data():
    torch.manual_seed(0)
    q = EMAQuantizer(8, 2, 0.99, 1e-5, dead_code_threshold=0.5).train()
    z = torch.randn(1, 2, 4, 4)
    q(z)  # data init + first update
    q.ema_cluster_size[3] = 0.0  # kill code 3
    q.embedding[3] = 1e6
    q(z)
    assert q.last_restarts >= 1
    assert float(q.ema_cluster_size[3]) == 1.0
    dist = (z.permute(0, 2, 3, 1).reshape(-1, 2) - q.embedding[3]).norm(dim=1).min()
    assert float(dist) < 1e-2  # now (a jittered copy of) one of the batch vectors


def test_codebook_usage_stats():
    u = codebook_usage(torch.tensor([0, 1, 2, 3]), 8)
    assert u["fraction_used"] == 0.5 and u["codes_used"] == 4 and abs(u["perplexity"] - 4.0) < 1e-9
    u = codebook_usage(torch.zeros(10, dtype=torch.long), 8)
    assert abs(u["perplexity"] - 1.0) < 1e-9


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_training_steps_reduce_loss_on_digits():
    from mdlm.data.images import dataset_to_tensors, load_digits_dataset

    x, _ = dataset_to_tensors(load_digits_dataset()["train"])
    torch.manual_seed(0)
    m = VQModelForImages(VQConfig(image_size=8, hidden_channels=[16, 16], num_res_blocks=1, embedding_dim=8, codebook_size=32))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    m.train()
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: one thread is fastest, and robust on a busy machine
    try:
        for step in range(40):
            batch = x[(step * 64) % 1344 :][:64]
            out = m(batch)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            losses.append(float(out.reconstruction_loss))
    finally:
        torch.set_num_threads(threads)
    assert bool(m.quantizer.initialized)
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_save_load_identical(tmp_path):
    m = tiny()
    m.train()
    m(torch.rand(4, 1, 28, 28) * 2 - 1)  # touch the EMA buffers
    m.eval()
    save_pretrained_atomic(m, str(tmp_path))
    assert {"config.json", "model.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / ".staging-final").exists()
    m2 = load_image_tokenizer(str(tmp_path))
    assert isinstance(m2, VQModelForImages) and not m2.training
    for (k1, v1), (k2, v2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2), k1
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert torch.equal(m.encode(x), m2.encode(x))
    codes = m.encode(x)
    assert torch.equal(m.decode(codes), m2.decode(codes))


def test_loader_rejects_other_dirs(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        load_image_tokenizer(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="not an image tokenizer"):
        load_image_tokenizer(str(tmp_path))


def test_diffusers_vqmodel_loader(tmp_path):
    diffusers = pytest.importorskip("diffusers", reason="diffusers is not installed: pip install -e \".[images]\"")
    torch.manual_seed(0)
    vq = diffusers.VQModel(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        num_vq_embeddings=16,
        sample_size=16,
    )
    vq.save_pretrained(str(tmp_path / "vqvae"))  # as inside a pipeline dir
    tok = load_image_tokenizer(str(tmp_path))
    assert tok.codebook_size == 16 and tok.latent_shape == (8, 8) and tok.num_channels == 1
    assert isinstance(tok, ImageTokenizer)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    codes = tok.encode(x)
    assert codes.shape == (2, 8, 8) and int(codes.max()) < 16
    with torch.no_grad():  # the same codes as diffusers' own quantiser
        _, _, (_, _, idx) = vq.eval().quantize(vq.encode(x).latents)
    assert torch.equal(codes.flatten(), idx.flatten())
    y = tok.decode(codes)
    assert y.shape == (2, 1, 16, 16) and float(y.abs().max()) <= 1.0
    with torch.no_grad():  # decode == diffusers' decoder on the looked-up codebook vectors
        quant = vq.quantize.get_codebook_entry(codes.flatten(), (2, 8, 8, 4))
        ref = vq.decode(quant, force_not_quantize=True).sample.clamp(-1, 1)
    assert torch.allclose(y, ref, atol=1e-6)


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_train_vq_recipe_smoke(tmp_path, monkeypatch, capsys):
    """recipes/train_vq.py end to end on the 8×8 digits: Trainer plumbing, HF dir, metrics.json."""
    from scripts import run_main

    out = tmp_path / "vq"
    code, printed, _ = run_main(
        monkeypatch, capsys, "recipes/train_vq.py", "--dataset", "digits", "--hidden_channels", "8", "8",
        "--num_res_blocks", "1", "--embedding_dim", "4", "--codebook_size", "16", "--max_steps", "3",
        "--per_device_train_batch_size", "32", "--max_eval_samples", "64", "--num_preview", "4", "--output_dir",
        str(out), "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true", "--save_strategy", "no",
        "--torch_num_threads", "1")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 64 and metrics["train_steps"] == 3 and metrics["latent_shape"] == [2, 2]
    assert 0 < metrics["codebook_fraction_used"] <= 1 and 1 <= metrics["codebook_perplexity"] <= 16
    assert (out / "reconstructions.png").is_file()
    tok = load_image_tokenizer(str(out))
    assert tok.codebook_size == 16 and tok.latent_shape == (2, 2)
    assert "test reconstruction PSNR" in printed
