"""A small generated folder of RGB(A) images with captions, shared by the image tests (no downloads).

Layout (what ``datasets``' ``imagefolder`` reads, and what a user's own folder looks like)::

    root/<class>/<i>.png      class = sub-folder name
    root/metadata.jsonl       {"file_name": "<class>/<i>.png", "caption": "<colour> <shape>"}

Each image is a coloured shape (circle / square) on a transparent background, so alpha compositing matters; sizes
vary so resizing / centre-cropping is exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}
SHAPES = ("circle", "square")


def make_rgb_folder(root: str | Path, per_class: int = 6, sizes: tuple[int, ...] = (64, 80, 48), seed: int = 0) -> Path:
    """Write ``len(SHAPES) * per_class`` RGBA PNGs (classes = shapes; captions name colour and shape); returns root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for shape in SHAPES:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour = list(COLOURS)[i % len(COLOURS)]
            s = sizes[i % len(sizes)]
            im = Image.new("RGBA", (s, s), (0, 0, 0, 0))
            d = ImageDraw.Draw(im)
            lo, hi = int(s * rng.uniform(0.1, 0.25)), int(s * rng.uniform(0.75, 0.9))
            (d.ellipse if shape == "circle" else d.rectangle)([lo, lo, hi, hi], fill=COLOURS[colour] + (255,))
            name = f"{shape}/{i:03d}.png"
            im.save(root / name)
            rows.append({"file_name": name, "caption": f"{colour} {shape}"})
    with open(root / "metadata.jsonl", "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    return root


def random_rgb_vq(path: str | Path, seed: int = 0) -> Path:
    """A random (untrained) 64×64 RGB VQ tokenizer with 16 codes saved at ``path``: 16×16 codes of a 4-channel
    latent, enough for the recipes to encode the folder's images in seconds."""
    import torch

    from mdlm.tokenizers.image import VQConfig, VQModelForImages

    torch.manual_seed(seed)
    cfg = VQConfig(in_channels=3, image_size=64, hidden_channels=[4, 4], num_res_blocks=1, embedding_dim=4,
                   codebook_size=16)
    VQModelForImages(cfg).save_pretrained(path)
    return Path(path)
