"""Animations of a canvas unmasking, for docs: text canvases drawn as wrapped tokens (masked positions as grey
boxes, tokens committed by the step on green), image canvases as pictures; written as a GIF and as a PNG strip
of a few frames. Files are written to a temporary name first and then renamed (never half-written)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..fonts import label_font
from .render import MASKED, NEW, Piece

INK, NEW_BG, MASK_FILL, PAPER = (20, 20, 20), (167, 243, 208), (209, 213, 219), (255, 255, 255)


NEWLINE = " / "  # a line break drawn as in quoted verse, so a frame stays a few rows tall


def _layout(pieces: Sequence[Piece], draw, font, size: int, width: int, pad: int, row_h: int) -> list[tuple]:
    """(x, row, text, kind, w) for each piece, wrapping at ``width``."""
    out, x, row = [], pad, 0
    for p in pieces:
        part = p.text.replace("\n", NEWLINE)
        w = int(size * 0.8) if p.kind == MASKED else int(draw.textlength(part, font=font))
        if x + w > width - pad:
            x, row = pad, row + 1
        out.append((x, row, part, p.kind, w))
        x += w
    return out


def text_rows(pieces: Sequence[Piece], width: int = 640, size: int = 16) -> int:
    """Rows :func:`text_frame` needs for ``pieces`` (give frames of one animation the max of these)."""
    from PIL import Image, ImageDraw

    parts = _layout(pieces, ImageDraw.Draw(Image.new("RGB", (1, 1))), label_font(size), size, width, 8, int(size * 1.5))
    return 1 + max((row for _, row, *_ in parts), default=0)


def text_frame(pieces: Sequence[Piece], caption: str, width: int = 640, size: int = 16, rows: int = 4):
    """One frame: ``caption`` on top, then the pieces wrapped to ``width`` pixels (``rows`` rows tall)."""
    from PIL import Image, ImageDraw

    font, pad, row_h = label_font(size), 8, int(size * 1.5)
    img = Image.new("RGB", (width, pad * 3 + row_h * (rows + 1)), PAPER)
    draw = ImageDraw.Draw(img)
    draw.text((pad, pad), caption, fill=(90, 90, 90), font=font)
    for x, row, part, kind, w in _layout(pieces, draw, font, size, width, pad, row_h):
        y = pad * 2 + row_h * (row + 1)
        if kind == MASKED:
            draw.rectangle((x, y + 2, x + w - 2, y + size + 2), fill=MASK_FILL)
            continue
        if kind == NEW and part.strip():
            draw.rectangle((x, y, x + w, y + size + 4), fill=NEW_BG)
        draw.text((x, y), part, fill=(150, 150, 150) if part == NEWLINE else INK, font=font)
    return img


def picture_frame(picture: np.ndarray, caption: str, size: int = 16):
    """An (H, W, 3) uint8 picture with ``caption`` above it."""
    from PIL import Image, ImageDraw

    pad = 8
    img = Image.new("RGB", (picture.shape[1] + 2 * pad, picture.shape[0] + 3 * pad + size), PAPER)
    img.paste(Image.fromarray(picture), (pad, 2 * pad + size))
    ImageDraw.Draw(img).text((pad, pad), caption, fill=(90, 90, 90), font=label_font(size))
    return img


def save_gif(frames: list, path: str, frame_ms: int = 250, hold_last_ms: int = 1500) -> None:
    """Frames (PIL images of one size) → a looping GIF; the last frame is held ``hold_last_ms``."""
    tmp = f"{path}.tmp{os.getpid()}.gif"
    durations = [frame_ms] * (len(frames) - 1) + [hold_last_ms]
    frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    os.replace(tmp, path)


def save_strip(frames: list, path: str, keep: Sequence[int], vertical: bool = True) -> None:
    """The frames at indices ``keep`` stacked (top to bottom, or left to right) into one PNG."""
    from PIL import Image

    chosen = [frames[i] for i in keep]
    w = max(f.width for f in chosen) if vertical else sum(f.width for f in chosen)
    h = sum(f.height for f in chosen) if vertical else max(f.height for f in chosen)
    strip, offset = Image.new("RGB", (w, h), PAPER), 0
    for f in chosen:
        strip.paste(f, (0, offset) if vertical else (offset, 0))
        offset += f.height if vertical else f.width
    tmp = f"{path}.tmp{os.getpid()}.png"
    strip.save(tmp)
    os.replace(tmp, path)
