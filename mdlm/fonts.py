"""The font for text drawn into PNGs (grid titles, row labels, decoding strips).

PIL's built-in font covers Latin only, so "τ ∈ (0, 0.8]" or a non-Latin prompt drew as boxes. DejaVu Sans (shipped
with matplotlib, which the ``images`` extra installs) covers Greek, maths symbols and most scripts; without
matplotlib the built-in font is the fallback.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=8)
def label_font(size: int):
    """A PIL font of ``size`` px: DejaVu Sans when matplotlib finds it, else PIL's default font."""
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans", fallback_to_default=False), size)
    except (ImportError, OSError, ValueError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()
