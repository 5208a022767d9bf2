"""Image data: IDX reader, datasets, image folders, token layout, image-token datasets, samples npz."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from mdlm.data.images import (
    FASHION_MNIST_CLASSES,
    ImageTokenLayout,
    build_image_token_dataset,
    check_codebook_size,
    dataset_to_tensors,
    images_dataset,
    load_digits_dataset,
    load_idx_split,
    load_image_folder,
    load_samples_npz,
    pil_to_array,
    read_idx,
    save_image_grid,
    save_samples_npz,
    token_sequences,
    tokens_to_images,
)
from mdlm.tokenizers.image import VQConfig, VQModelForImages


def write_idx(path: str, arr: np.ndarray, type_byte: int, gz: bool = False) -> None:
    header = bytes([0, 0, type_byte, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


def test_read_idx_uint8_gz_and_int32(tmp_path):
    imgs = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    write_idx(str(tmp_path / "im.gz"), imgs, 0x08, gz=True)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "im.gz")), imgs)
    ints = np.array([[1, -2], [300000, 4]], dtype=np.int32)
    write_idx(str(tmp_path / "i32"), ints, 0x0C)
    out = read_idx(str(tmp_path / "i32"))
    np.testing.assert_array_equal(out, ints)
    assert out.dtype == np.int32


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(str(tmp_path / "bad"))
    write_idx(str(tmp_path / "short"), np.zeros((2, 2), np.uint8), 0x08)
    raw = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="bytes follow"):
        read_idx(str(tmp_path / "short"))


def test_idx_split_dataset(tmp_path):
    imgs = np.zeros((4, 28, 28), np.uint8)
    imgs[1] = 255
    imgs[2, 0, 0] = 51
    write_idx(str(tmp_path / "x.gz"), imgs, 0x08, gz=True)
    write_idx(str(tmp_path / "y.gz"), np.array([0, 9, 3, 3], np.uint8), 0x08, gz=True)
    ds = load_idx_split(str(tmp_path / "x.gz"), str(tmp_path / "y.gz"), FASHION_MNIST_CLASSES)
    assert ds.features["label"].names[9] == "Ankle boot"
    x, y = dataset_to_tensors(ds)
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
    assert y.tolist() == [0, 9, 3, 3]
    assert float(x[0].max()) == -1.0 and float(x[1].min()) == 1.0
    assert abs(float(x[2, 0, 0, 0]) - (51 / 127.5 - 1)) < 1e-6
    row = ds.with_format("numpy")[2]
    assert row["pixel_values"].shape == (1, 28, 28) and row["pixel_values"].dtype == np.float32


def test_idx_split_label_count_mismatch(tmp_path):
    write_idx(str(tmp_path / "x"), np.zeros((3, 28, 28), np.uint8), 0x08)
    write_idx(str(tmp_path / "y"), np.zeros(2, np.uint8), 0x08)
    with pytest.raises(ValueError, match="expected 3 labels"):
        load_idx_split(str(tmp_path / "x"), str(tmp_path / "y"), FASHION_MNIST_CLASSES)


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_digits_fixture_splits():
    ds = load_digits_dataset()
    assert len(ds["train"]) + len(ds["test"]) == 1797
    x, y = dataset_to_tensors(ds["test"])
    assert x.shape[1:] == (1, 8, 8) and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert set(y.tolist()) <= set(range(10))


def test_images_dataset_validates():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        images_dataset(np.zeros((2, 8, 8), np.float32), np.zeros(2), ["a"])
    with pytest.raises(ValueError, match="labels must lie"):
        images_dataset(np.zeros((2, 1, 8, 8), np.float32), np.array([0, 3]), ["a", "b"])


def test_pil_conversion_resize_and_errors():
    from PIL import Image

    rgb = Image.fromarray(np.full((30, 40, 3), 200, np.uint8))
    a = pil_to_array(rgb, 28, 1)  # centre-crop 30×30, resize to 28×28, luma
    assert a.shape == (1, 28, 28) and a.dtype == np.uint8 and int(a[0, 5, 5]) == 200
    assert pil_to_array(rgb, 16, 3).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="40×30 but image_size is 28"):
        pil_to_array(rgb, 28, 1, resize=False)
    rgba = Image.fromarray(np.zeros((28, 28, 4), np.uint8))  # fully transparent → white
    assert int(pil_to_array(rgba, 28, 1).min()) == 255


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("boots", "coats"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = load_image_folder(str(tmp_path), image_size=16, channels=1, test_fraction=0.2, cache_dir=str(tmp_path / ".c"))
    assert ds["train"].features["label"].names == ["boots", "coats"]
    assert len(ds["train"]) + len(ds["test"]) == 10 and len(ds["test"]) >= 1  # hash-stable split (image_sources)
    x, _ = dataset_to_tensors(ds["train"])
    assert x.shape == (len(ds["train"]), 1, 16, 16)
    with pytest.raises(ValueError, match="image_size is 16"):
        load_image_folder(str(tmp_path), image_size=16, resize=False, cache_dir=str(tmp_path / ".c"))


def test_layout_ids():
    lay = ImageTokenLayout(codebook_size=256, num_classes=10)
    assert lay.class_token(0) == 256 and lay.class_token(9) == 265
    assert lay.mask_id == 266 and lay.vocab_size == 267
    assert lay.suppress_ids == list(range(256, 267))
    assert torch.equal(lay.class_token(torch.tensor([1, 2])), torch.tensor([257, 258]))
    with pytest.raises(ValueError):
        lay.class_token(10)
    with pytest.raises(ValueError):
        lay.class_token(torch.tensor([-1]))
    ids = torch.tensor([[258, 0, 255, 7]])
    labels, codes = lay.split(ids)
    assert labels.tolist() == [2] and codes.tolist() == [[0, 255, 7]]
    with pytest.raises(ValueError, match="still masked"):
        lay.split(torch.tensor([[258, 0, lay.mask_id]]))


def test_codebook_size_mismatch_names_both_sizes():
    lay = ImageTokenLayout(256, 10)
    check_codebook_size(256, lay)
    with pytest.raises(ValueError, match=r"512 codes.*expects 256"):
        check_codebook_size(512, lay)


def tiny_vq(image_size: int = 8, k: int = 32) -> VQModelForImages:
    torch.manual_seed(0)
    cfg = VQConfig(image_size=image_size, hidden_channels=[8, 8], num_res_blocks=1, embedding_dim=4, codebook_size=k)
    return VQModelForImages(cfg).eval()


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_token_sequences_and_dataset():
    lay = ImageTokenLayout(32, 10)
    codes = torch.arange(8).view(2, 2, 2)
    ids = token_sequences(codes, torch.tensor([3, 0]), lay)
    assert ids.tolist() == [[35, 0, 1, 2, 3], [32, 4, 5, 6, 7]]

    ds = load_digits_dataset()
    small = ds["test"].select(range(40))
    tok = tiny_vq(8, 32)
    out = build_image_token_dataset(tok, small, batch_size=16)
    assert len(out) == 40 and out.features["label"].names[0] == "0"
    row = out.with_format("numpy")[:]
    x, y = dataset_to_tensors(small)
    expect = token_sequences(tok.encode(x), y, ImageTokenLayout(32, 10)).numpy()
    np.testing.assert_array_equal(row["input_ids"], expect)
    assert row["input_ids"].shape == (40, 5)
    assert (row["prompt_mask"][:, 0] == 1).all() and (row["prompt_mask"][:, 1:] == 0).all()
    assert (row["cond_mask"] == row["prompt_mask"]).all()
    with pytest.raises(ValueError, match="codebook size mismatch"):
        build_image_token_dataset(tok, small, layout=ImageTokenLayout(64, 10))

    # and back: sequences → images equal to decode(encode(x)), labels recovered
    imgs, labels = tokens_to_images(tok, torch.from_numpy(row["input_ids"]), ImageTokenLayout(32, 10))
    assert torch.equal(labels, y) and torch.equal(imgs, tok.decode(tok.encode(x)))
    masked = torch.from_numpy(row["input_ids"]).clone()
    masked[0, 3] = ImageTokenLayout(32, 10).mask_id
    with pytest.raises(ValueError, match="still masked"):
        tokens_to_images(tok, masked, ImageTokenLayout(32, 10))


def test_samples_npz_round_trip(tmp_path):
    x = torch.linspace(-1, 1, 2 * 28 * 28).view(2, 1, 28, 28)
    save_samples_npz(str(tmp_path / "s.npz"), x, torch.tensor([4, 7]))
    back, labels = load_samples_npz(str(tmp_path / "s.npz"))
    assert back.shape == (2, 1, 28, 28) and labels.tolist() == [4, 7]
    assert float((back - x).abs().max()) <= 1 / 127.5 + 1e-6  # uint8 quantisation
    np.savez(tmp_path / "f.npz", images=np.full((3, 28, 28), 2.0, np.float32))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        load_samples_npz(str(tmp_path / "f.npz"))
    save_image_grid(back, str(tmp_path / "grid.png"), nrow=2)
    assert (tmp_path / "grid.png").stat().st_size > 0
