"""Catalogues of the offline colour-image sources: which files, with which caption, class and keywords.

Each reader returns a :class:`Catalog` — a list of :class:`SourceItem` (one per image file) and the class
names — without decoding any image; :mod:`mdlm.data.image_sources` decodes, splits and caches them.

  * ``emoji``: npm ``emoji-datasource-google@16.0.0`` (Noto emoji, 64×64 RGBA PNGs; Apache-2.0 images, MIT data).
    Class = the emoji's category (9; the 5 "Component" entries — the skin-tone swatches, colour patches rather
    than pictures — are left out). Caption = the Unicode name in lower case (+ ", medium skin tone" etc. for a skin
    variation); keywords = its short names and sub-category. Skin variations share their base emoji's ``group``,
    so every tone of one emoji lands in the same split.
  * ``openclipart``: Debian ``openclipart-png`` (public-domain clip art). Class = the package's top-level folder
    (22: animals, computer, food, …); caption = the file name's words (titles truncated by the packager, often
    followed by the author's name); keywords = the folder path. Images whose longer side is < ``min_side`` px are
    skipped (never upscaled).
  * ``tuxpaint``: Debian ``tuxpaint-stamps-default`` (GPL-2 stamps). Class = top-level folder (17); caption = the
    English line of the stamp's ``.txt``; keywords = the folder path.
  * a user folder: ``root/<class>/*.png`` (or flat), captions from ``metadata.jsonl`` / ``metadata.csv``
    (``file_name`` + ``caption`` or ``text``), class = the parent folder's name even when metadata is present.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

EMOJI_PACKAGE = "emoji-datasource-google@16.0.0"
EMOJI_DEFAULT_PREFIX = os.path.join(os.path.expanduser("~"), ".cache", "mdlm", "npm")
EMOJI_INSTALL = f"npm install --prefix {EMOJI_DEFAULT_PREFIX} {EMOJI_PACKAGE}"
EMOJI_DROPPED_CATEGORIES = ("Component",)
OPENCLIPART_DIR = "/usr/share/openclipart/png"
TUXPAINT_DIR = "/usr/share/tuxpaint/stamps"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
SPLIT_DIRS = ("train", "test", "validation")
# Unicode skin-tone modifiers (Fitzpatrick scale) as written in emoji.json's skin_variations keys
SKIN_TONES = {"1F3FB": "light", "1F3FC": "medium-light", "1F3FD": "medium", "1F3FE": "medium-dark", "1F3FF": "dark"}


@dataclass(frozen=True)
class SourceItem:
    """One image file: ``key`` names it uniquely, ``group`` decides its split (variants share a group)."""

    path: str
    key: str
    group: str
    caption: str
    category: str
    keywords: tuple[str, ...] = ()
    split: str | None = None  # "train" / "test" when the source fixes it (a folder's own split dirs)


@dataclass
class Catalog:
    name: str
    items: list[SourceItem]
    class_names: list[str]
    fit: str = "crop"  # how a non-square image becomes square (see mdlm.data.images.pil_to_array)
    notes: dict[str, int] = field(default_factory=dict)  # counts of skipped files etc.


def _words(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").split())


# ---- emoji -------------------------------------------------------------------------------------------


def emoji_dir(path: str | None = None) -> str:
    """The ``emoji-datasource-google`` package dir: ``path``, else ``$MDLM_EMOJI_DIR``, else
    ``./node_modules/…`` or the default install prefix (:data:`EMOJI_INSTALL`)."""
    candidates = [path] if path else [
        os.environ.get("MDLM_EMOJI_DIR"),
        os.path.join("node_modules", "emoji-datasource-google"),
        os.path.join(EMOJI_DEFAULT_PREFIX, "node_modules", "emoji-datasource-google"),
    ]
    for d in filter(None, candidates):
        if os.path.isfile(os.path.join(d, "emoji.json")):
            return d
    raise ValueError(
        f"no emoji data set found (looked for emoji.json in {', '.join(repr(c) for c in candidates if c)}); "
        f"install it with `{EMOJI_INSTALL}` or set MDLM_EMOJI_DIR to the package dir"
    )


def _tone_phrase(key: str) -> str:
    tones = [SKIN_TONES.get(t.upper(), t) for t in key.split("-")]
    return f"{' and '.join(dict.fromkeys(tones))} skin tone"


def read_emoji(path: str | None = None, skin_tones: bool = True, size: int = 64) -> Catalog:
    """The emoji catalogue (see module docstring); ``size`` picks ``img/google/<size>/`` (16/20/32/64)."""
    root = emoji_dir(path)
    img_dir = os.path.join(root, "img", "google", str(size))
    with open(os.path.join(root, "emoji.json"), encoding="utf-8") as f:
        entries = json.load(f)
    names: list[str] = []
    items: list[SourceItem] = []
    for e in sorted(entries, key=lambda e: e.get("sort_order", 0)):
        cat = e["category"]
        if cat in EMOJI_DROPPED_CATEGORIES or not e.get("has_img_google"):
            continue
        names += [cat] if cat not in names else []
        caption = (e.get("name") or e["short_name"]).lower()
        keywords = tuple(dict.fromkeys([*(_words(s) for s in e.get("short_names") or [e["short_name"]]),
                                        _words(e.get("subcategory") or "")]))
        base = SourceItem(os.path.join(img_dir, e["image"]), e["short_name"], e["short_name"], caption, cat, keywords)
        items.append(base)
        for tone, v in (e.get("skin_variations") or {}).items() if skin_tones else ():
            if v.get("has_img_google"):
                items.append(SourceItem(os.path.join(img_dir, v["image"]), f"{e['short_name']}:{tone.lower()}",
                                        base.group, f"{caption}, {_tone_phrase(tone)}", cat, keywords))
    return Catalog("emoji" if skin_tones else "emoji-base", items, names)


# ---- Debian packages ---------------------------------------------------------------------------------


def _image_files(root: str) -> list[str]:
    out = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(out)


def image_size_of(path: str) -> tuple[int, int]:
    """(width, height) from the file's header (no decode); ValueError naming the file if it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file") from None


def _require_dir(path: str, package: str) -> str:
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} does not exist; install the Debian package with `apt-get install {package}`")
    return path


def read_openclipart(root: str = OPENCLIPART_DIR, min_side: int = 64) -> Catalog:
    """Debian ``openclipart-png`` (see module docstring); images whose longer side is < ``min_side`` are skipped."""
    from PIL import Image

    root = _require_dir(root, "openclipart-png")
    items, small, huge = [], 0, 0
    for p in _image_files(root):
        rel = Path(os.path.relpath(p, root))
        try:
            w, h = image_size_of(p)
        except Image.DecompressionBombError:  # PIL refuses to open it at all
            huge += 1
            continue
        if max(w, h) < min_side:
            small += 1
            continue
        if w * h > (Image.MAX_IMAGE_PIXELS or w * h):  # PIL refuses these as decompression bombs
            huge += 1
            continue
        title = _words(rel.stem).removesuffix(" 01").strip()
        folders = tuple(_words(d) for d in rel.parts[:-1])
        items.append(SourceItem(p, rel.as_posix(), rel.as_posix(), title, rel.parts[0], folders))
    names = sorted({i.category for i in items})
    return Catalog("openclipart", items, names, fit="pad",
                   notes={"skipped_smaller_than_min_side": small, "skipped_over_pil_pixel_limit": huge})


def _tuxpaint_caption(txt: str) -> str:
    """The first line (English) of a Tux Paint stamp description, without its final full stop."""
    if not os.path.isfile(txt):
        return ""
    with open(txt, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    return first.rstrip(".").strip()


def read_tuxpaint(root: str = TUXPAINT_DIR) -> Catalog:
    """Debian ``tuxpaint-stamps-default`` (see module docstring); a stamp without a description gets its file name."""
    root = _require_dir(root, "tuxpaint-stamps-default")
    items = []
    for p in _image_files(root):
        rel = Path(os.path.relpath(p, root))
        caption = _tuxpaint_caption(os.path.splitext(p)[0] + ".txt") or _words(rel.stem)
        items.append(SourceItem(p, rel.as_posix(), rel.as_posix(), caption, rel.parts[0],
                                tuple(_words(d) for d in rel.parts[:-1])))
    return Catalog("tuxpaint", items, sorted({i.category for i in items}), fit="pad")


# ---- a user folder -----------------------------------------------------------------------------------


def _read_metadata(root: str) -> dict[str, dict]:
    """``file_name`` (relative to ``root``) → row, from every ``metadata.jsonl`` / ``metadata.csv`` under root."""
    rows: dict[str, dict] = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            if f == "metadata.jsonl":
                with open(os.path.join(d, f), encoding="utf-8") as fh:
                    recs = [json.loads(line) for line in fh if line.strip()]
            elif f == "metadata.csv":
                with open(os.path.join(d, f), encoding="utf-8", newline="") as fh:
                    recs = list(csv.DictReader(fh))
            else:
                continue
            for r in recs:
                if "file_name" not in r:
                    raise ValueError(f"{os.path.join(d, f)}: a row without 'file_name': {r}")
                rows[os.path.normpath(os.path.relpath(os.path.join(d, r["file_name"]), root))] = r
    return rows


def read_folder(root: str) -> Catalog:
    """A user's folder (see module docstring). Files under ``root/train`` / ``root/test`` (or ``validation``)
    keep that split; a flat folder is one class, ``"image"``."""
    if not os.path.isdir(root):
        raise ValueError(f"image folder {root!r} does not exist")
    meta = _read_metadata(root)
    files = _image_files(root)
    if not files:
        raise ValueError(f"image folder {root!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    items = []
    for p in files:
        rel = Path(os.path.relpath(p, root))
        parts = list(rel.parts[:-1])
        split = None
        if parts and parts[0] in SPLIT_DIRS:
            split = "train" if parts[0] == "train" else "test"
            parts = parts[1:]
        row = meta.get(os.path.normpath(str(rel)), {})
        caption = str(row.get("caption", row.get("text", "")))
        items.append(SourceItem(p, rel.as_posix(), rel.as_posix(), caption, parts[-1] if parts else "image", (), split))
    return Catalog(os.path.basename(os.path.normpath(root)), items, sorted({i.category for i in items}))


def catalog_counts(items: Sequence[SourceItem], class_names: Sequence[str]) -> dict[str, int]:
    """Images per class name (a summary line for the docs and the export CLI)."""
    counts = dict.fromkeys(class_names, 0)
    for i in items:
        counts[i.category] += 1
    return counts
