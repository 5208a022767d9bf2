"""Image data sets as HF ``datasets`` and their conversion to VQ-token sequences for the MDM.

Every image data set here has the columns
  * ``pixel_values``: float32 array (C, H, W) in [-1, 1]  (uint8 p ↦ p / 127.5 - 1),
  * ``label``: int (a ``ClassLabel`` with the class names),
and the splits ``train`` and ``test``.

Sources:
  * Fashion-MNIST from IDX files (Xiao et al. 2017; Debian ``dataset-fashion-mnist`` puts them in
    ``/usr/share/datasets/fashion-mnist``; ``$MDLM_FASHION_MNIST_DIR`` overrides) — 1×28×28, 10 classes.
  * scikit-learn's bundled 8×8 ``load_digits`` (values 0..16) — a tiny fixture for tests.
  * any folder of images at any size (class = sub-folder name, captions from ``metadata.jsonl``) and the
    colour sources ``emoji`` / ``openclipart`` / ``tuxpaint`` with captions: :mod:`mdlm.data.image_sources`;
    :func:`pil_to_array` is the size / channel / alpha conversion of both.

Image tokens (:func:`build_image_token_dataset`): ``input_ids = [class_token] + codes`` with the
vocabulary laid out by :class:`ImageTokenLayout` — codes 0..K-1, class c → K + c, [MASK] → K + C.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from datasets import Array3D, ClassLabel, Dataset, DatasetDict, DatasetInfo, Features

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# IDX type byte → numpy dtype (big-endian); LeCun's MNIST format.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ----------------------------------------------------------------------------------------------
# IDX files


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (optionally ``.gz``): 2 zero bytes, a type byte, the number of dimensions,
    then one big-endian uint32 per dimension, then the data in C order."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but {len(raw) - header} bytes follow")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def uint8_to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] → float32 [-1, 1]."""
    return images.astype(np.float32) / 127.5 - 1.0


def unit_to_uint8(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """float [-1, 1] → uint8 [0, 255] (rounded, clipped)."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# datasets from arrays


def images_dataset(pixel_values: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> Dataset:
    """(N, C, H, W) float32 in [-1, 1] + (N,) int labels → ``Dataset`` (columns ``pixel_values``,
    ``label``). Built straight from Arrow buffers (no per-row Python), ~1 s for 60k images."""
    x = np.ascontiguousarray(pixel_values, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"pixel_values must be (N, C, H, W), got shape {x.shape}")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(x):
        raise ValueError(f"{len(x)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"labels must lie in [0, {len(class_names)}), got [{labels.min()}, {labels.max()}]")
    shape = tuple(int(s) for s in x.shape[1:])
    storage = pa.array(x.reshape(-1))
    for d in reversed(shape):  # datasets' ArrayXD storage: nested variable-size lists
        storage = pa.ListArray.from_arrays(pa.array(np.arange(0, len(storage) + 1, d, dtype=np.int32)), storage)
    feature = Array3D(shape=shape, dtype="float32")
    ext = pa.ExtensionArray.from_storage(feature(), storage)
    features = Features({"pixel_values": feature, "label": ClassLabel(names=list(class_names))})
    table = pa.table({"pixel_values": ext, "label": pa.array(labels)})
    return Dataset(table, info=DatasetInfo(features=features))


def dataset_to_tensors(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """``pixel_values`` (N, C, H, W) float32 and ``label`` (N,) int64 of a whole split."""
    if len(ds) == 0:
        raise ValueError("empty image dataset")
    cols = ds.with_format("numpy")[:]
    x = torch.from_numpy(np.ascontiguousarray(cols["pixel_values"], dtype=np.float32))  # (N, C, H, W)
    y = torch.from_numpy(np.asarray(cols["label"], dtype=np.int64))  # (N,)
    return x, y


class TensorImageDataset(torch.utils.data.Dataset):
    """A map-style torch dataset over in-memory tensors (fast random access for training loops;
    Arrow's random row access is ~50× slower for nested arrays)."""

    def __init__(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, label_key: str = "labels"):
        self.pixel_values = pixel_values  # (N, C, H, W)
        self.labels = labels  # (N,)
        self.label_key = label_key

    def __len__(self) -> int:
        return self.pixel_values.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = {"pixel_values": self.pixel_values[i]}
        if self.labels is not None:
            row[self.label_key] = self.labels[i]
        return row


def save_image_grid(images: torch.Tensor | np.ndarray, path: str, nrow: int = 8, scale: int = 2) -> None:
    """Write (N, C, H, W) images in [-1, 1] as one PNG grid of ``nrow`` columns (1-pixel gaps),
    each pixel repeated ``scale`` times."""
    from PIL import Image

    x = unit_to_uint8(images)  # (N, C, H, W)
    n, c, h, w = x.shape
    rows = (n + nrow - 1) // nrow
    grid = np.full((c, rows * (h + 1) + 1, nrow * (w + 1) + 1), 255, dtype=np.uint8)
    for k in range(n):  # paste tiles (layout only, no maths)
        r, q = divmod(k, nrow)
        grid[:, 1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w] = x[k]
    grid = grid.repeat(scale, axis=1).repeat(scale, axis=2)
    Image.fromarray(grid[0] if c == 1 else grid.transpose(1, 2, 0)).save(path)


def save_samples_npz(path: str, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray | None = None,
                     captions: Sequence[str] | None = None) -> None:
    """Write generated images for ``eval/fid.py``: ``images`` (N, C, H, W) in [-1, 1] are stored as
    uint8 [0, 255] under key ``images``; ``labels`` (N,) = the class each image was asked for;
    ``captions`` (N,) = the prompt each image was generated from (a unicode array, no pickle)."""
    arrays = {"images": unit_to_uint8(images)}
    if labels is not None:
        y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        if len(y) != len(arrays["images"]):
            raise ValueError(f"{len(arrays['images'])} images but {len(y)} labels")
        arrays["labels"] = y.astype(np.int64)
    if captions is not None:
        if len(captions) != len(arrays["images"]):
            raise ValueError(f"{len(arrays['images'])} images but {len(captions)} captions")
        arrays["captions"] = np.array([str(c) for c in captions], dtype=str)
    np.savez_compressed(path, **arrays)


def load_samples_npz(path: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read images (+ optional labels) from an ``.npz``: key ``images`` (falls back to the first
    array) as (N, C, H, W) or (N, H, W) (one channel added); uint8 is taken as [0, 255], floats
    must already lie in [-1, 1]. Key ``labels`` (or ``label``/``y``) as (N,) ints. Returns float32
    (N, C, H, W) in [-1, 1] and int64 labels or None."""
    with np.load(path) as z:
        keys = list(z.keys())
        if not keys:
            raise ValueError(f"{path}: empty npz")
        x = z["images"] if "images" in z else z[keys[0]]
        label_key = next((k for k in ("labels", "label", "y") if k in z), None)
        y = z[label_key] if label_key else None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"{path}: images must be (N, C, H, W) or (N, H, W), got shape {x.shape}")
    if x.dtype == np.uint8:
        x = uint8_to_unit(x)
    else:
        x = x.astype(np.float32)
        if x.size and (x.min() < -1.001 or x.max() > 1.001):
            raise ValueError(f"{path}: float images must lie in [-1, 1], got [{x.min():.3f}, {x.max():.3f}]")
    labels = None
    if y is not None:
        labels = torch.from_numpy(np.asarray(y).astype(np.int64).reshape(-1))
        if len(labels) != len(x):
            raise ValueError(f"{path}: {len(x)} images but {len(labels)} labels")
    return torch.from_numpy(np.ascontiguousarray(x)), labels


# ----------------------------------------------------------------------------------------------
# sources


def load_idx_split(images_path: str, labels_path: str, class_names: Sequence[str]) -> Dataset:
    """One split from an IDX image file (N, H, W) uint8 and an IDX label file (N,)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected (N, H, W) uint8 images, got {images.shape} {images.dtype}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{labels_path}: expected {len(images)} labels, got shape {labels.shape}")
    return images_dataset(uint8_to_unit(images)[:, None], labels, class_names)  # (N, 1, H, W)


def fashion_mnist_dir(data_dir: str | None = None) -> str:
    d = data_dir or os.environ.get("MDLM_FASHION_MNIST_DIR") or DEFAULT_FASHION_MNIST_DIR
    if not os.path.isfile(os.path.join(d, "train-images-idx3-ubyte.gz")) and not os.path.isfile(
        os.path.join(d, "train-images-idx3-ubyte")
    ):
        raise ValueError(
            f"no Fashion-MNIST IDX files in {d!r}; install Debian 'dataset-fashion-mnist' "
            "(apt-get install dataset-fashion-mnist) or set MDLM_FASHION_MNIST_DIR"
        )
    return d


def load_fashion_mnist(data_dir: str | None = None) -> DatasetDict:
    """Fashion-MNIST: ``train`` (60 000) and ``test`` (10 000), 1×28×28 in [-1, 1], 10 classes
    (:data:`FASHION_MNIST_CLASSES`)."""
    d = fashion_mnist_dir(data_dir)

    def path(name: str) -> str:
        p = os.path.join(d, name)
        return p + ".gz" if os.path.isfile(p + ".gz") else p

    return DatasetDict(
        {
            split: load_idx_split(path(f"{prefix}-images-idx3-ubyte"), path(f"{prefix}-labels-idx1-ubyte"), FASHION_MNIST_CLASSES)
            for split, prefix in (("train", "train"), ("test", "t10k"))
        }
    )


def load_digits_dataset(test_fraction: float = 0.2, seed: int = 0) -> DatasetDict:
    """scikit-learn's 1 797 8×8 digits (values 0..16 → [-1, 1]), a deterministic train/test split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 8.0 - 1.0)[:, None]  # (N, 1, 8, 8)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    names = [str(i) for i in range(10)]
    return DatasetDict(
        {
            "train": images_dataset(x[perm[n_test:]], y[perm[n_test:]], names),
            "test": images_dataset(x[perm[:n_test]], y[perm[:n_test]], names),
        }
    )


BACKGROUND: tuple[int, int, int] = (255, 255, 255)  # transparent pixels are composited on white
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # PIL modes that hold one (grey) channel


def pil_to_array(img, image_size: int, channels: int, resize: bool = True, *, fit: str = "crop",
                 background: tuple[int, int, int] = BACKGROUND, allow_grey: bool = True):  # → (C, S, S) uint8
    """One PIL image → (channels, image_size, image_size) uint8.

    Conversion (documented contract of :func:`load_image_folder` and :mod:`mdlm.data.image_sources`):
      * alpha: transparent pixels are composited on ``background`` (:data:`BACKGROUND`, white) first.
      * mode: ``Image.convert("L")`` for 1 channel (ITU-R 601 luma) or ``convert("RGB")`` for 3. With
        ``allow_grey=False`` a one-channel (grey) image where 3 channels are asked for raises ValueError.
      * size: ``fit="crop"`` centre-crops a non-square image to a square, ``fit="pad"`` pads it to a square
        with ``background`` (keeps the whole drawing); then PIL's LANCZOS (antialiased) resize to
        image_size². With ``resize=False`` a wrong size raises ValueError.
    """
    from PIL import Image

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if fit not in ("crop", "pad"):
        raise ValueError(f"fit must be 'crop' or 'pad', got {fit!r}")
    if channels == 3 and not allow_grey and img.mode in GREY_MODES:
        raise ValueError(f"a greyscale image (PIL mode {img.mode}) where RGB is expected")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(bg, rgba)
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (image_size, image_size):
        if not resize:
            raise ValueError(
                f"image of size {img.size[0]}×{img.size[1]} but image_size is {image_size} (pass resize=True to resize)"
            )
        w, h = img.size
        s = min(w, h) if fit == "crop" else max(w, h)
        if fit == "crop":
            left, top = (w - s) // 2, (h - s) // 2
            img = img.crop((left, top, left + s, top + s))
        elif w != h:
            fill = background if channels == 3 else Image.new("RGB", (1, 1), background).convert("L").getpixel((0, 0))
            square = Image.new(img.mode, (s, s), fill)
            square.paste(img, ((s - w) // 2, (s - h) // 2))
            img = square
        img = img.resize((image_size, image_size), Image.LANCZOS)
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def load_image_folder(
    data_dir: str,
    image_size: int = 28,
    channels: int = 1,
    resize: bool = True,
    test_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | None = None,
    allow_grey: bool = True,
) -> DatasetDict:
    """A folder of images at any size (``data_dir/<class>/*.png`` …, or flat), converted by
    :func:`pil_to_array` to (channels, image_size, image_size) in [-1, 1]; see
    :func:`mdlm.data.image_sources.load_folder` for the columns (``caption`` from ``metadata.jsonl``,
    ``label`` = the parent folder even when metadata is present).

    Splits: the folder's own ``train`` / ``test`` (or ``validation``) sub-folders when it has them, else a
    stable hash of each file's path picks ≈ ``test_fraction`` of the images (``seed`` is ignored: the split
    does not depend on file order). A flat folder gets one class, ``"image"``. ``allow_grey=False`` with
    ``channels=3`` refuses a greyscale file. Decoded arrays are cached under ``cache_dir`` (default
    ``$MDLM_CACHE``; ``""`` = no cache).
    """
    from .image_sources import load_folder

    return load_folder(data_dir, image_size, channels, resize, test_fraction, allow_grey, cache_dir)


def load_image_dataset(name: str, image_size: int | None = None, channels: int = 1, resize: bool = True) -> DatasetDict:
    """``fashion-mnist`` | ``digits`` | ``emoji`` / ``emoji-base`` / ``openclipart`` / ``tuxpaint`` (RGB,
    ``image_size`` default 64; :mod:`mdlm.data.image_sources`) | an exported ``.npz`` | an image folder path."""
    from . import image_sources

    key = name.lower().replace("_", "-")
    if key in ("fashion-mnist", "fmnist"):
        ds = load_fashion_mnist()
    elif key in ("digits", "sklearn-digits"):
        ds = load_digits_dataset()
    elif key in image_sources.SOURCES:
        ds = image_sources.load_source(key, image_size)
    elif name.endswith(".npz") and os.path.isfile(name):
        ds = image_sources.load_exported(name, image_size)
    elif os.path.isdir(name):
        return load_image_folder(name, image_size=image_size or 28, channels=channels, resize=resize)
    elif name.endswith(".npz"):
        raise ValueError(f"{name!r}: no such file (export one with `python -m mdlm.data.image_sources export emoji "
                         f"{name}`)")
    else:
        raise ValueError(
            f"unknown image dataset {name!r}: use fashion-mnist, digits, {', '.join(image_sources.SOURCES)}, "
            "an exported .npz or an image folder path"
        )
    shape = tuple(ds["train"].features["pixel_values"].shape)
    if image_size is not None and shape[1:] != (image_size, image_size):
        raise ValueError(f"{name} images are {shape[1]}×{shape[2]}, not {image_size}×{image_size}")
    if shape[0] != channels:
        raise ValueError(f"{name} images have {shape[0]} channel(s), not {channels}")
    return ds


# ----------------------------------------------------------------------------------------------
# image tokens


@dataclass(frozen=True)
class ImageTokenLayout:
    """Vocabulary of class-conditional image-token sequences:

        ids 0 .. K-1          VQ codes
        ids K .. K+C-1        class tokens (class c → K + c)
        id  K+C               [MASK]          → vocab_size = K + C + 1
    """

    codebook_size: int
    num_classes: int

    def __post_init__(self) -> None:
        if self.codebook_size < 1 or self.num_classes < 1:
            raise ValueError(f"codebook_size and num_classes must be >= 1, got {self.codebook_size}, {self.num_classes}")

    @property
    def mask_id(self) -> int:
        return self.codebook_size + self.num_classes

    @property
    def vocab_size(self) -> int:
        return self.codebook_size + self.num_classes + 1

    @property
    def class_token_ids(self) -> list[int]:
        return list(range(self.codebook_size, self.codebook_size + self.num_classes))

    @property
    def suppress_ids(self) -> list[int]:
        """Ids never sampled at an image-code position: every class token and [MASK]."""
        return [*self.class_token_ids, self.mask_id]

    def class_token(self, label: int | torch.Tensor | np.ndarray) -> int | torch.Tensor | np.ndarray:
        """Class label(s) → class token id(s); works elementwise on tensors / arrays."""
        if isinstance(label, (torch.Tensor, np.ndarray)):
            if label.size if isinstance(label, np.ndarray) else label.numel():
                lo, hi = int(label.min()), int(label.max())
                if lo < 0 or hi >= self.num_classes:
                    raise ValueError(f"labels must lie in [0, {self.num_classes}), got [{lo}, {hi}]")
            return label + self.codebook_size
        if not 0 <= int(label) < self.num_classes:
            raise ValueError(f"label {label} outside [0, {self.num_classes})")
        return self.codebook_size + int(label)

    def split(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1 + h·w) sequences → labels (B,) and codes (B, h·w); raises if a code position holds a
        non-code id (class token or [MASK])."""
        labels = input_ids[:, 0] - self.codebook_size  # (B,)
        codes = input_ids[:, 1:]  # (B, h·w)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError("code positions hold ids outside [0, codebook_size): still masked or not image codes")
        return labels, codes

    def to_dict(self) -> dict[str, int]:
        return {"codebook_size": self.codebook_size, "num_classes": self.num_classes, "mask_id": self.mask_id, "vocab_size": self.vocab_size}


def check_codebook_size(tokenizer_codebook_size: int, layout: ImageTokenLayout) -> None:
    """Raise ValueError naming both sizes when a tokenizer's codebook does not match the layout
    (e.g. a model trained on a 512-code tokenizer sampled with a 256-code one)."""
    if int(tokenizer_codebook_size) != layout.codebook_size:
        raise ValueError(
            f"codebook size mismatch: the image tokenizer has {int(tokenizer_codebook_size)} codes "
            f"but the token layout expects {layout.codebook_size}"
        )


@torch.no_grad()
def encode_images(tokenizer, pixel_values: torch.Tensor, batch_size: int = 512, progress: bool = False) -> torch.Tensor:
    """(N, C, H, W) → (N, h, w) codes, ``batch_size`` images per tokenizer call."""
    chunks = range(0, pixel_values.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="encoding images", unit="batch")
    return torch.cat([tokenizer.encode(pixel_values[i : i + batch_size]).cpu() for i in chunks])


def token_sequences(codes: torch.Tensor, labels: torch.Tensor, layout: ImageTokenLayout) -> torch.Tensor:
    """codes (N, h, w) + labels (N,) → input_ids (N, 1 + h·w) = [class token] + row-major codes."""
    cls = layout.class_token(labels.long())[:, None]  # (N, 1)
    return torch.cat([cls, codes.reshape(codes.shape[0], -1).long()], dim=1)


@torch.no_grad()
def tokens_to_images(tokenizer, input_ids: torch.Tensor, layout: ImageTokenLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated sequences (B, 1 + h·w) → images (B, C, H, W) in [-1, 1] and their class labels (B,).
    Raises if a code position still holds [MASK] or a class token (see ``ImageTokenLayout.split``)."""
    check_codebook_size(tokenizer.codebook_size, layout)
    h, w = tokenizer.latent_shape
    if input_ids.dim() != 2 or input_ids.shape[1] != 1 + h * w:
        raise ValueError(f"expected (B, {1 + h * w}) token sequences for a {h}×{w} latent, got {tuple(input_ids.shape)}")
    labels, codes = layout.split(input_ids.long())
    return tokenizer.decode(codes.view(-1, h, w)).cpu(), labels.cpu()


def build_image_token_dataset(
    tokenizer,
    dataset: Dataset | DatasetDict,
    layout: ImageTokenLayout | None = None,
    batch_size: int = 512,
    progress: bool = False,
) -> Dataset | DatasetDict:
    """Encode every image with the VQ ``tokenizer`` into rows of

        input_ids   (1 + h·w,) int64  [class token] + codes
        label       int
        prompt_mask (1 + h·w,) int8   1 at the class token (never masked, no loss — see
                                       mdlm.training.collator)
        cond_mask   (1 + h·w,) int8   1 at the class token (replaced by [MASK] under label dropout)

    ``layout`` defaults to ``ImageTokenLayout(tokenizer.codebook_size, number of classes)``; a given
    layout is checked against the tokenizer. A DatasetDict is converted split by split.
    """
    if isinstance(dataset, DatasetDict):
        first = dataset[next(iter(dataset))]
        layout = layout or _default_layout(tokenizer, first)
        return DatasetDict({k: build_image_token_dataset(tokenizer, v, layout, batch_size, progress) for k, v in dataset.items()})
    layout = layout or _default_layout(tokenizer, dataset)
    check_codebook_size(tokenizer.codebook_size, layout)
    x, y = dataset_to_tensors(dataset)  # (N, C, H, W), (N,)
    codes = encode_images(tokenizer, x, batch_size, progress)  # (N, h, w)
    ids = token_sequences(codes, y, layout).numpy()  # (N, L)
    n, length = ids.shape
    cond = np.zeros((n, length), dtype=np.int8)
    cond[:, 0] = 1
    table = pa.table(
        {
            "input_ids": pa.FixedSizeListArray.from_arrays(pa.array(ids.reshape(-1)), length),
            "label": pa.array(y.numpy()),
            "prompt_mask": pa.FixedSizeListArray.from_arrays(pa.array(cond.reshape(-1)), length),
            "cond_mask": pa.FixedSizeListArray.from_arrays(pa.array(cond.reshape(-1)), length),
        }
    )
    out = Dataset(table)
    if isinstance(dataset.features.get("label"), ClassLabel):
        out = out.cast_column("label", dataset.features["label"])
    out.info.description = (
        f"image tokens: latent {tuple(tokenizer.latent_shape)}, layout {layout.to_dict()}"
    )
    return out


def _default_layout(tokenizer, ds: Dataset) -> ImageTokenLayout:
    label = ds.features.get("label")
    if isinstance(label, ClassLabel):
        num_classes = label.num_classes
    else:
        num_classes = int(np.max(np.asarray(ds.with_format("numpy")[:]["label"]))) + 1
    return ImageTokenLayout(int(tokenizer.codebook_size), num_classes)


__all__ = [
    "BACKGROUND",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "ImageTokenLayout",
    "TensorImageDataset",
    "build_image_token_dataset",
    "check_codebook_size",
    "dataset_to_tensors",
    "encode_images",
    "images_dataset",
    "load_digits_dataset",
    "load_fashion_mnist",
    "load_idx_split",
    "load_image_dataset",
    "load_image_folder",
    "pil_to_array",
    "read_idx",
    "save_image_grid",
    "save_samples_npz",
    "load_samples_npz",
    "token_sequences",
    "tokens_to_images",
    "uint8_to_unit",
    "unit_to_uint8",
]
