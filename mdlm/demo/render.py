"""A text canvas as pieces a person can read: each generated position is a decoded token, a mask glyph,
or nothing (EOS / padding), tagged ``"masked"``, ``"new"`` (committed by this step) or ``"kept"``.

The same pieces feed the terminal (:func:`to_ansi`: dim ``░`` for [MASK], bold green for new tokens)
and the web demo (:func:`to_highlighted`: Gradio ``HighlightedText`` pairs).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
MASK_GLYPH = "░"
MASKED, NEW, KEPT = "masked", "new", "kept"

DIM, BOLD_GREEN, RESET = "\x1b[2m", "\x1b[1;32m", "\x1b[0m"


@dataclass(frozen=True)
class Piece:
    text: str
    kind: str  # MASKED | NEW | KEPT


def printable(text: str) -> str:
    """Control characters a token may decode to (other than newline and tab) shown as U+FFFD, so that a
    model's output can never move the cursor or recolour the terminal."""
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" and c not in "\n\t" else c for c in text)


def canvas_pieces(tokenizer, ids: Tensor, committed: Tensor | None = None) -> list[Piece]:
    """(G,) generated token ids (one row, [MASK] where masked) and (G,) bool committed-this-step →
    one :class:`Piece` per position; special tokens other than [MASK] (EOS, padding) become empty text."""
    mask_id = tokenizer.mask_token_id
    hidden = set(tokenizer.all_special_ids) - {mask_id}
    new = committed if committed is not None else torch.zeros_like(ids, dtype=torch.bool)
    pieces = []
    for tok, is_new in zip(ids.tolist(), new.tolist()):
        if tok == mask_id:
            pieces.append(Piece(MASK_GLYPH, MASKED))
        else:
            text = "" if tok in hidden else printable(tokenizer.decode([tok], skip_special_tokens=False))
            pieces.append(Piece(text, NEW if is_new else KEPT))
    return pieces


def masked_count(pieces: list[Piece]) -> int:
    return sum(p.kind == MASKED for p in pieces)


def to_plain(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces)


def to_ansi(pieces: list[Piece], color: bool = True) -> str:
    """Terminal text: masked positions dim ``░``, tokens committed this step bold green."""
    if not color:
        return to_plain(pieces)
    style = {MASKED: DIM, NEW: BOLD_GREEN}
    return "".join(f"{style[p.kind]}{p.text}{RESET}" if p.kind in style and p.text else p.text for p in pieces)


def to_highlighted(pieces: list[Piece]) -> list[tuple[str, str | None]]:
    """Gradio ``HighlightedText`` value: (text, label) with label "masked" / "new" and None for kept tokens;
    empty pieces dropped."""
    return [(p.text, None if p.kind == KEPT else p.kind) for p in pieces if p.text]
