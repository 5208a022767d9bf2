"""Image-token datasets for the class-conditional image MDM: encode images once with a VQ, cache the
codes, and serve fixed-length rows ``[class token] + h·w codes`` to ``MDMCollator``.

The cache entry is keyed on everything the codes are built from: the VQ's identity (SHA-256 of its
config and weights, :mod:`mdlm.tokenizers.vq_files`), the data source (for files: every file's path,
size and modification time — a new class folder, an edited image or a replaced IDX file is a new
key), the image size / channels the images are converted to, and the cache format. A changed source
is re-encoded, never silently read from a stale entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import torch

from ..cli import UserError
from .images import ImageTokenLayout
from .subsets import subset_indices
from .text_image import TextImageLayout

CACHE_FORMAT = "image-tokens-v2"  # bump when the cached columns or the key change


class ImageSource(Protocol):
    """What names the images (the image recipe's ``ImageDataArguments`` is one)."""

    dataset: str
    data_dir: str | None
    image_size: int | None
    channels: int
    cache_dir: str | None
    encode_batch_size: int


def _is_fmnist(name: str) -> bool:
    return name.lower().replace("_", "-") in ("fashion-mnist", "fmnist")


def _folder_of(name: str) -> str | None:
    if name.startswith("imagefolder:"):
        return name.split(":", 1)[1]
    return name if os.path.isdir(name) else None


def load_images(src: ImageSource):
    """The image DatasetDict (train/test) named by ``src.dataset``."""
    from .images import load_fashion_mnist, load_image_dataset, load_image_folder

    folder = _folder_of(src.dataset)
    if folder is not None:
        return load_image_folder(folder, image_size=src.image_size or 28, channels=src.channels)
    if _is_fmnist(src.dataset) and src.data_dir:
        return load_fashion_mnist(src.data_dir)
    return load_image_dataset(src.dataset, src.image_size, src.channels)


def files_fingerprint(root: str, keep=lambda name: True) -> str:
    """SHA-256 over (relative path, size, mtime in ns) of every file under ``root`` (sorted walk)."""
    h = hashlib.sha256()
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if not keep(f):
                continue
            p = os.path.join(d, f)
            st = os.stat(p)
            h.update(f"{os.path.relpath(p, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def data_source_key(src: ImageSource) -> dict[str, Any]:
    """What identifies the images for the token cache (see the module docstring)."""
    from .images import fashion_mnist_dir

    key: dict[str, Any] = {"dataset": src.dataset, "image_size": src.image_size, "channels": src.channels}
    folder = _folder_of(src.dataset)
    if folder is not None:
        key.update(path=os.path.abspath(folder), files=files_fingerprint(folder))
    elif _is_fmnist(src.dataset):
        d = os.path.abspath(fashion_mnist_dir(src.data_dir))
        key.update(path=d, files=files_fingerprint(d, keep=lambda f: "ubyte" in f))
    else:  # bundled data (scikit-learn digits): its version stands in for its content
        import sklearn

        key.update(version=sklearn.__version__)
    return key


def cache_path(src: ImageSource, vq_digest: str, hflip: bool = False) -> str | None:
    """The cache directory for ``src`` encoded by the VQ ``vq_digest`` (with the training mirrors under
    ``hflip``); None when caching is off."""
    if src.cache_dir is not None and src.cache_dir.lower() in ("none", "off", "no", ""):
        return None
    root = src.cache_dir or os.path.join(os.environ.get("MDLM_CACHE", os.path.expanduser("~/.cache/mdlm")), "image_tokens")
    key = {"format": CACHE_FORMAT, "vq": vq_digest, "data": data_source_key(src)}
    if hflip:  # absent otherwise: the entries cached before --hflip existed keep their names
        key["hflip"] = True
    blob = json.dumps(key, sort_keys=True)
    slug = "".join(c if c.isalnum() else "-" for c in src.dataset.split(":")[0].lower())[:40]
    return os.path.join(root, f"{slug}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}")


def mirrored_split(ds):
    """A labelled image split with every image followed by its horizontal mirror (mdlm.data.image_augment):
    2N rows (a ``--max_train_samples`` draw takes images and mirrors alike)."""
    from .image_augment import hflip
    from .images import dataset_to_tensors, images_dataset

    x, y = dataset_to_tensors(ds)  # (N, C, H, W), (N,)
    pixels = torch.stack([x, hflip(x)], dim=1).flatten(0, 1)  # (2N, C, H, W): image, mirror, image, …
    return images_dataset(pixels.numpy(), y.repeat_interleave(2).numpy(), ds.features["label"].names)


def token_dataset(src: ImageSource, vq, vq_digest: str, device: torch.device, verbose: bool, hflip: bool = False):
    """The image-token DatasetDict (``mdlm.data.images.build_image_token_dataset``), from the cache when
    present, else encoded (with a progress bar) and cached: saved to a temporary dir, then renamed.
    ``hflip``: the train split also holds every image's mirror (the test split never does)."""
    from datasets import load_from_disk

    from .images import build_image_token_dataset

    path = cache_path(src, vq_digest, hflip)
    if path and os.path.isdir(path):
        if verbose:
            print(f"image tokens: cached {path}", flush=True)
        return load_from_disk(path)
    try:
        images = load_images(src)
        if hflip:
            images["train"] = mirrored_split(images["train"])
    except ValueError as e:
        raise UserError(str(e)) from None
    vq.to(device)
    try:
        tokens = build_image_token_dataset(vq, images, batch_size=src.encode_batch_size, progress=verbose)
    except ValueError as e:  # images of the wrong size / channels for this VQ
        raise UserError(f"cannot encode {src.dataset} with {getattr(src, 'vq_model', None) or 'the VQ'}: {e}") from None
    if path:
        tmp = f"{path}.tmp-{os.getpid()}"
        tokens.save_to_disk(tmp)
        try:
            os.replace(tmp, path)
        except OSError:  # another process cached it first
            shutil.rmtree(tmp, ignore_errors=True)
        if verbose:
            print(f"image tokens: cached to {path}", flush=True)
    return tokens


def split_tensor(ds, limit: int | None) -> torch.Tensor:
    """``input_ids`` of a token split as one (N, L) int64 tensor (``limit`` rows drawn at random, seeded:
    :func:`mdlm.data.subsets.subset_indices`)."""
    idx = subset_indices(len(ds), limit)
    if idx is not None:
        ds = ds.select(idx.tolist())
    col = ds.with_format("arrow")["input_ids"]  # one Arrow column: no per-row Python conversion
    if not isinstance(col, (pa.ChunkedArray, pa.Array)):  # a Table (older datasets versions)
        col = col.column("input_ids")
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    return torch.from_numpy(flat.reshape(len(ds), -1))


class LayoutVocab:
    """The tokenizer-shaped view of an image layout that ``build_model`` needs (ids, length); a text-image
    layout (mdlm.data.text_image) has a pad id, a class-only one none."""

    def __init__(self, layout: ImageTokenLayout | TextImageLayout):
        self.layout = layout
        self.mask_token_id = layout.mask_id
        self.pad_token_id = layout.pad_id if isinstance(layout, TextImageLayout) else None
        self.eos_token_id = None

    def __len__(self) -> int:
        return self.layout.vocab_size


class ImageTokenRows(torch.utils.data.Dataset):
    """Rows of a fixed-length token matrix for MDMCollator: ``input_ids`` (L,) and the class-token
    masks ``prompt_mask`` = ``cond_mask`` (L,) (never masked / dropped for CFG)."""

    def __init__(self, input_ids: torch.Tensor):
        self.input_ids = input_ids  # (N, L) long
        self.cond = torch.zeros(input_ids.shape[1], dtype=torch.bool)  # (L,)
        self.cond[0] = True

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[i], "prompt_mask": self.cond, "cond_mask": self.cond}
