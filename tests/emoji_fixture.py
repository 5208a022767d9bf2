"""A tiny stand-in for npm ``emoji-datasource-google``: the same ``emoji.json`` fields and ``img/google/64/*.png``
layout, generated (no npm in CI). Entries mirror real ones: a base emoji with two skin-tone variations, a
"Component" swatch (left out by the reader), an entry without a Google image, and several categories."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

# (name, short_name, category, subcategory, colour, skin tones)
ENTRIES = [
    ("GRINNING FACE", "grinning", "Smileys & Emotion", "face-smiling", (250, 200, 40), ()),
    ("SKULL", "skull", "Smileys & Emotion", "face-negative", (230, 230, 230), ()),
    ("WAVING HAND SIGN", "wave", "People & Body", "hand-fingers-open", (250, 200, 40), ("1F3FB", "1F3FF")),
    ("CHILD", "child", "People & Body", "person", (250, 200, 40), ()),
    ("EMOJI MODIFIER FITZPATRICK TYPE-3", "skin-tone-3", "Component", "skin-tone", (200, 150, 100), ()),
    ("ELEPHANT", "elephant", "Animals & Nature", "animal-mammal", (150, 150, 160), ()),
    ("SEAL", "seal", "Animals & Nature", "animal-mammal", (120, 120, 130), ()),
    ("CHERRIES", "cherries", "Food & Drink", "food-fruit", (200, 20, 40), ()),
    ("HAMBURGER", "hamburger", "Food & Drink", "food-prepared", (190, 120, 40), ()),
    ("RED APPLE", "apple", "Food & Drink", "food-fruit", (220, 30, 30), ()),
]
NO_IMAGE = ("FACE WITH NO GOOGLE IMAGE", "nope", "Smileys & Emotion", "face-smiling")


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # transparent corners → white after compositing
    ImageDraw.Draw(im).ellipse([8, 8, 56, 56], fill=colour + (255,))
    im.save(path)


def make_emoji_package(root: str | Path) -> Path:
    """Write the fake package under ``root`` and return its directory (what ``MDLM_EMOJI_DIR`` points to)."""
    pkg = Path(root) / "emoji-datasource-google"
    img = pkg / "img" / "google" / "64"
    img.mkdir(parents=True, exist_ok=True)
    rows = []
    for order, (name, short, cat, sub, colour, tones) in enumerate(ENTRIES):
        code = f"{0x1F600 + order:x}"
        _png(img / f"{code}.png", colour)
        row = {"name": name, "unified": code.upper(), "image": f"{code}.png", "short_name": short,
               "short_names": [short, f"{short}_alias"], "category": cat, "subcategory": sub, "sort_order": order,
               "has_img_google": True}
        if tones:
            row["skin_variations"] = {}
            for t in tones:
                file = f"{code}-{t.lower()}.png"
                _png(img / file, (100, 60, 30) if t == "1F3FF" else (250, 220, 190))
                row["skin_variations"][t] = {"unified": f"{code.upper()}-{t}", "image": file, "has_img_google": True}
        rows.append(row)
    name, short, cat, sub = NO_IMAGE
    rows.append({"name": name, "unified": "1F6FF", "image": "1f6ff.png", "short_name": short, "short_names": [short],
                 "category": cat, "subcategory": sub, "sort_order": 99, "has_img_google": False})
    (pkg / "emoji.json").write_text(json.dumps(rows[::-1]), encoding="utf-8")  # file order ≠ sort order
    return pkg
