"""Colour image data sets (64×64 RGB by default) with captions, as HF ``datasets``, and their carry file.

Sources (catalogues in :mod:`mdlm.data.image_catalogs`): ``emoji`` (3,781 Noto emoji incl. skin tones),
``emoji-base`` (1,906, no skin-tone variants), ``openclipart``, ``tuxpaint``, or any user folder.

Every split has the columns of :mod:`mdlm.data.images` — ``pixel_values`` float32 (3, S, S) in [-1, 1] and
``label`` (``ClassLabel``) — plus ``caption`` (str), ``keywords`` (list of str), ``category`` (the class name)
and ``key`` (the file's stable name).

Conversion: :func:`mdlm.data.images.pil_to_array` — alpha composited on :data:`BACKGROUND` (white), made square
(emoji / user folders: centre-crop; clip art and stamps: padded with the background so no drawing is cut),
LANCZOS-resized to S×S.

Held-out split: an image is in ``test`` iff ``sha1(group) / 2**32 < test_fraction`` (first 8 hex digits), where
``group`` is its stable key (file path inside the source, or the base emoji's short name so that all skin tones
of one emoji share a split). The split of an image depends on its own name only: it does not change with file
order, and adding images to a source never moves an existing one between train and test.

Decoded arrays are cached as one ``.npz`` under ``$MDLM_CACHE/image_sources`` (default ``~/.cache/mdlm``), keyed
by a fingerprint of the file list (paths, sizes, mtimes), the captions and the conversion settings. The same
``.npz`` layout is the carry file for machines without npm / apt::

    python -m mdlm.data.image_sources export emoji emoji64.npz     # uint8 images + labels + captions
    python -m mdlm.data.image_sources info emoji                    # counts per split and class

and ``load_image_dataset("emoji64.npz")`` (or :func:`load_exported`) reads it back. Where the package is not
installed, ``load_image_dataset("emoji")`` reads ``$MDLM_IMAGE_DATA/emoji64.npz`` (default dir ``.data``) instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from datasets import (
    Dataset,
    DatasetDict,
    DatasetInfo,
    Features,
    List,
    Value,
)

from .image_catalogs import (
    Catalog,
    catalog_counts,
    read_emoji,
    read_folder,
    read_openclipart,
    read_tuxpaint,
)
from .images import BACKGROUND, images_dataset, pil_to_array, uint8_to_unit

FORMAT_VERSION = 1  # of the .npz layout and the conversion; part of the cache fingerprint
DEFAULT_SIZE = 64
DEFAULT_TEST_FRACTION = 0.1
KEYWORD_SEP = "|"
SOURCES = ("emoji", "emoji-base", "openclipart", "tuxpaint")
TEXT_COLUMNS = ("caption", "keywords", "category", "key")


def read_catalog(name: str) -> Catalog:
    """The catalogue of a named source (ValueError naming the install command when it is missing)."""
    readers = {"emoji": read_emoji, "emoji-base": lambda: read_emoji(skin_tones=False),
               "openclipart": read_openclipart, "tuxpaint": read_tuxpaint}
    if name not in readers:
        raise ValueError(f"unknown image source {name!r}; valid: {', '.join(SOURCES)} or a folder path")
    return readers[name]()


# ---- split --------------------------------------------------------------------------------------------


def hash_unit(key: str) -> float:
    """A stable number in [0, 1) from a string (first 32 bits of its SHA-1)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def held_out_mask(groups: Sequence[str], test_fraction: float, fixed: Sequence[str | None] | None = None) -> np.ndarray:
    """(N,) bool, True = test: ``fixed`` splits where given, else ``hash_unit(group) < test_fraction``. When
    the hash leaves a split empty (tiny folders), the group with the smallest hash goes to test."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    h = np.array([hash_unit(g) for g in groups])  # (N,)
    test = h < test_fraction
    if fixed is not None and any(s is not None for s in fixed):
        return np.array([s == "test" for s in fixed])
    if len(groups) >= 2 and (test.all() or not test.any()):
        test = np.array([g == groups[int(np.argmin(h))] for g in groups])
    return test


# ---- decode -------------------------------------------------------------------------------------------


def decode_image(path: str, size: int, channels: int = 3, *, fit: str = "crop", resize: bool = True,
                 allow_grey: bool = True) -> np.ndarray:
    """One file → (channels, size, size) uint8; ValueError naming the file if it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # between 1× and 2× PIL's pixel limit it warns (above, DecompressionBombError is an error below): a few
            # openclipart PNGs are that large; they are decoded once and shrunk to `size`
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                return pil_to_array(im, size, channels, resize, fit=fit, allow_grey=allow_grey)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: {e}") from None


def decode_catalog(cat: Catalog, size: int, channels: int = 3, resize: bool = True, allow_grey: bool = True,
                   progress: bool = True) -> np.ndarray:
    """All images of a catalogue → (N, channels, size, size) uint8, with a progress bar."""
    from tqdm.auto import tqdm

    it = tqdm(cat.items, desc=f"decoding {cat.name}", unit="img", disable=not progress or len(cat.items) < 200)
    out = np.empty((len(cat.items), channels, size, size), dtype=np.uint8)
    for k, item in enumerate(it):  # one PIL decode per file (I/O, no maths)
        out[k] = decode_image(item.path, size, channels, fit=cat.fit, resize=resize, allow_grey=allow_grey)
    return out


# ---- arrays ↔ npz ↔ datasets --------------------------------------------------------------------------


def catalog_arrays(cat: Catalog, size: int = DEFAULT_SIZE, channels: int = 3, test_fraction: float = DEFAULT_TEST_FRACTION,
                   resize: bool = True, allow_grey: bool = True, progress: bool = True) -> dict[str, np.ndarray]:
    """Decode + split a catalogue into the arrays of the ``.npz`` layout (see :func:`save_arrays`)."""
    if not cat.items:
        raise ValueError(f"{cat.name}: no images")
    index = {c: i for i, c in enumerate(cat.class_names)}
    test = held_out_mask([i.group for i in cat.items], test_fraction, [i.split for i in cat.items])
    return {
        "images": decode_catalog(cat, size, channels, resize, allow_grey, progress),  # (N, C, S, S)
        "labels": np.array([index[i.category] for i in cat.items], dtype=np.int64),  # (N,)
        "split": test.astype(np.int8),  # (N,) 1 = test
        "captions": np.array([i.caption for i in cat.items], dtype=str),
        "keywords": np.array([KEYWORD_SEP.join(i.keywords) for i in cat.items], dtype=str),
        "categories": np.array([i.category for i in cat.items], dtype=str),
        "keys": np.array([i.key for i in cat.items], dtype=str),
        "class_names": np.array(cat.class_names, dtype=str),
        "meta": np.array(json.dumps({"source": cat.name, "format_version": FORMAT_VERSION, "fit": cat.fit,
                                     "background": list(BACKGROUND), "test_fraction": test_fraction, **cat.notes})),
    }


def save_arrays(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays as a compressed ``.npz`` atomically (a temp file renamed over ``path``): no half-written
    file ever replaces a good one. Strings are stored as fixed-width unicode arrays (no pickle)."""
    tmp = f"{path}.tmp{os.getpid()}.npz"
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_arrays(path: str) -> dict[str, np.ndarray]:
    """Read an exported ``.npz`` (``allow_pickle=False``); ValueError if it lacks the layout's keys."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    missing = [k for k in ("images", "labels", "split", "captions", "class_names") if k not in arrays]
    if missing:
        raise ValueError(f"{path}: not an exported image data set (missing {', '.join(missing)}); "
                         "write one with `python -m mdlm.data.image_sources export NAME OUT.npz`")
    if arrays["images"].dtype != np.uint8 or arrays["images"].ndim != 4:
        raise ValueError(f"{path}: images must be (N, C, H, W) uint8, got {arrays['images'].shape} {arrays['images'].dtype}")
    return arrays


def _split_dataset(arrays: dict[str, np.ndarray], mask: np.ndarray) -> Dataset:
    names = [str(c) for c in arrays["class_names"]]
    base = images_dataset(uint8_to_unit(arrays["images"][mask]), arrays["labels"][mask], names)
    n = int(mask.sum())
    text = {k: [str(s) for s in arrays[k][mask]] if k in arrays else [""] * n for k in ("captions", "categories", "keys")}
    kw = [str(s).split(KEYWORD_SEP) if str(s) else [] for s in arrays["keywords"][mask]] if "keywords" in arrays else [[]] * n
    table = base.data.table.append_column("caption", pa.array(text["captions"], pa.string()))
    table = table.append_column("keywords", pa.array(kw, pa.list_(pa.string())))
    table = table.append_column("category", pa.array(text["categories"], pa.string()))
    table = table.append_column("key", pa.array(text["keys"], pa.string()))
    features = Features({**base.features, "caption": Value("string"), "keywords": List(Value("string")),
                         "category": Value("string"), "key": Value("string")})
    return Dataset(table, info=DatasetInfo(features=features))


def arrays_to_datasets(arrays: dict[str, np.ndarray]) -> DatasetDict:
    """The ``.npz`` arrays → DatasetDict ``train`` / ``test`` (see module docstring for the columns)."""
    test = arrays["split"].astype(bool)
    return DatasetDict({"train": _split_dataset(arrays, ~test), "test": _split_dataset(arrays, test)})


def load_exported(path: str, image_size: int | None = None) -> DatasetDict:
    """An exported ``.npz`` → DatasetDict (ValueError if ``image_size`` is given and differs)."""
    arrays = load_arrays(path)
    s = arrays["images"].shape[-1]
    if image_size is not None and s != image_size:
        raise ValueError(f"{path} holds {s}×{s} images, not {image_size}×{image_size}; re-export with --size {image_size}")
    return arrays_to_datasets(arrays)


def source_name(name: str) -> str:
    """A data set's short name: the source recorded in an exported ``.npz``, else the name / folder's base name."""
    if name.endswith(".npz") and os.path.isfile(name):
        with np.load(name, allow_pickle=False) as z:
            if "meta" in z.files:
                return str(json.loads(str(z["meta"])).get("source", name))
    return os.path.basename(os.path.normpath(name))


# ---- cache --------------------------------------------------------------------------------------------


def cache_root(cache_dir: str | None = None) -> str:
    root = cache_dir or os.environ.get("MDLM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mdlm")
    return os.path.join(root, "image_sources")


def fingerprint(cat: Catalog, settings: dict) -> str:
    """SHA-1 over the conversion settings and every item (path, size, mtime, caption, class, keywords, split)."""
    h = hashlib.sha1(json.dumps({**settings, "v": FORMAT_VERSION, "fit": cat.fit, "bg": BACKGROUND}).encode())
    for i in cat.items:
        st = os.stat(i.path)
        h.update(json.dumps([i.path, st.st_size, st.st_mtime_ns, i.key, i.group, i.caption, i.category,
                             list(i.keywords), i.split]).encode())
    return h.hexdigest()[:16]


def cached_arrays(cat: Catalog, size: int = DEFAULT_SIZE, channels: int = 3, test_fraction: float = DEFAULT_TEST_FRACTION,
                  resize: bool = True, allow_grey: bool = True, cache_dir: str | None = None,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """:func:`catalog_arrays`, read from / written to the cache (``cache_dir=""`` turns the cache off)."""
    settings = {"size": size, "channels": channels, "test_fraction": test_fraction, "resize": resize, "grey": allow_grey}
    if cache_dir == "":
        return catalog_arrays(cat, size, channels, test_fraction, resize, allow_grey, progress)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in cat.name)
    path = os.path.join(cache_root(cache_dir), f"{safe}-{size}px-{fingerprint(cat, settings)}.npz")
    if os.path.isfile(path):
        return load_arrays(path)
    arrays = catalog_arrays(cat, size, channels, test_fraction, resize, allow_grey, progress)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_arrays(path, arrays)
    return arrays


def carried_export(name: str, size: int) -> str | None:
    """``$MDLM_IMAGE_DATA/<name><size>.npz`` (default dir ``.data``) if it exists: the export carried to a machine
    without npm / apt (e.g. ``.data/emoji64.npz``)."""
    path = os.path.join(os.environ.get("MDLM_IMAGE_DATA", ".data"), f"{name}{size}.npz")
    return path if os.path.isfile(path) else None


def load_source(name: str, image_size: int | None = None, test_fraction: float = DEFAULT_TEST_FRACTION,
                cache_dir: str | None = None) -> DatasetDict:
    """A named source (:data:`SOURCES`) as 3×S×S RGB DatasetDict (S = ``image_size`` or 64). When the source's
    package is not installed, a carried export (:func:`carried_export`) stands in for it."""
    size = image_size or DEFAULT_SIZE
    try:
        cat = read_catalog(name)
    except ValueError:
        carried = carried_export(name, size) if test_fraction == DEFAULT_TEST_FRACTION else None
        if carried is None:
            raise
        return load_exported(carried, size)
    return arrays_to_datasets(cached_arrays(cat, size, 3, test_fraction, cache_dir=cache_dir))


def load_folder(root: str, image_size: int = DEFAULT_SIZE, channels: int = 3, resize: bool = True,
                test_fraction: float = DEFAULT_TEST_FRACTION, allow_grey: bool = True,
                cache_dir: str | None = None) -> DatasetDict:
    """A user's image folder at any size (see :func:`mdlm.data.image_catalogs.read_folder`) as a DatasetDict."""
    cat = read_folder(root)
    return arrays_to_datasets(cached_arrays(cat, image_size, channels, test_fraction, resize, allow_grey, cache_dir))


# ---- command line -------------------------------------------------------------------------------------


def summary(arrays: dict[str, np.ndarray]) -> dict:
    """Counts per split and per class of a set of arrays (what ``info`` prints)."""
    names = [str(c) for c in arrays["class_names"]]
    test = arrays["split"].astype(bool)
    per_class = {n: [int(((arrays["labels"] == k) & ~test).sum()), int(((arrays["labels"] == k) & test).sum())]
                 for k, n in enumerate(names)}
    return {"train": int((~test).sum()), "test": int(test.sum()), "image_shape": list(arrays["images"].shape[1:]),
            "train_test_per_class": per_class, **(json.loads(str(arrays["meta"])) if "meta" in arrays else {})}


def _source_arrays(name: str, size: int) -> dict[str, np.ndarray]:
    if os.path.isdir(name):
        return cached_arrays(read_folder(name), size)
    return cached_arrays(read_catalog(name), size)


def main(argv: list[str] | None = None) -> int:
    from ..cli import ArgumentParser, positive_int, refuse_overwrite

    p = ArgumentParser(prog="python -m mdlm.data.image_sources", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write NAME's images + labels + captions as one .npz (uint8)")
    e.add_argument("name", help=f"{', '.join(SOURCES)} or an image folder")
    e.add_argument("out", help="output .npz")
    e.add_argument("--size", type=positive_int, default=DEFAULT_SIZE)
    e.add_argument("--overwrite", action="store_true")
    i = sub.add_parser("info", help="print counts per split and class as JSON")
    i.add_argument("name", help=f"{', '.join(SOURCES)}, an image folder or an exported .npz")
    i.add_argument("--size", type=positive_int, default=DEFAULT_SIZE)
    a = p.parse_args(argv)
    if a.cmd == "export":
        if not a.out.endswith(".npz"):
            p.error(f"the output must end in .npz, got {a.out!r}")
        refuse_overwrite(a.out, a.overwrite)
        arrays = _source_arrays(a.name, a.size)
        save_arrays(a.out, arrays)
        print(json.dumps({"wrote": a.out, "bytes": os.path.getsize(a.out), **summary(arrays)}))
    else:
        arrays = load_arrays(a.name) if a.name.endswith(".npz") else _source_arrays(a.name, a.size)
        print(json.dumps(summary(arrays)))
    return 0


if __name__ == "__main__":
    from ..cli import run_cli

    run_cli(lambda: main(sys.argv[1:]))()

__all__ = ["BACKGROUND", "SOURCES", "arrays_to_datasets", "cached_arrays", "catalog_arrays", "catalog_counts",
           "decode_image", "held_out_mask", "load_exported", "load_folder", "load_source", "read_catalog", "save_arrays"]
