"""PNG labels (grid titles, prompts) are drawn in a font that covers Greek and maths symbols when matplotlib is
installed: 'CFG 1 for τ ∈ (0, 0.8]' drew as boxes in PIL's Latin-only default font."""

import pytest

from mdlm.fonts import label_font


def test_label_font_covers_greek_and_math_symbols():
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: pip install matplotlib")
    from PIL import Image, ImageDraw

    font = label_font(14)
    assert font.getname()[0] == "DejaVu Sans"

    def ink(text: str) -> bytes:
        img = Image.new("L", (60, 24), 255)
        ImageDraw.Draw(img).text((2, 2), text, fill=0, font=font)
        return img.tobytes()

    # distinct glyphs, not one shared "missing glyph" box
    assert len({ink("τ"), ink("∈"), ink("ℓ"), ink("\uffff")}) == 4
