"""Prompts for the teacher's trajectories: the openings of a corpus's paragraphs.

``eval/decode_prompts.txt`` (the decoding benchmark's prompts) holds the first speech of held-out Shakespeare scenes
("SPEAKER:\\nfirst line") and the first line of held-out Bible chapters. The teacher decodes the same kind of prompt
from the *training* split — every paragraph's opening, not only a document's first — so the distilled model meets
prompts of the benchmark's shape without meeting the benchmark's prompts.
"""

from __future__ import annotations

from collections.abc import Iterable


def paragraph_openings(texts: Iterable[str], *, max_chars: int = 64, min_chars: int = 12) -> list[str]:
    """The opening of every paragraph (blank-line separated) of ``texts``, in order.

    An opening is the paragraph's first line, or its first two when the first ends with ':' (a speaker's name); it is
    cut after the last whole word within ``max_chars`` characters of its last line. Openings shorter than
    ``min_chars`` characters, and stage directions in brackets, are skipped. Raises ``ValueError`` for
    ``max_chars < min_chars`` or ``min_chars < 1``."""
    if min_chars < 1 or max_chars < min_chars:
        raise ValueError(f"need 1 <= min_chars <= max_chars, got min_chars={min_chars}, max_chars={max_chars}")
    out: list[str] = []
    for text in texts:
        for para in text.split("\n\n"):
            lines = [ln.strip() for ln in para.strip().split("\n") if ln.strip()]
            if not lines or lines[0].startswith("["):
                continue
            head, body = ("", lines[0]) if not lines[0].endswith(":") or len(lines) < 2 else (lines[0] + "\n", lines[1])
            if len(body) > max_chars:
                cut = body[:max_chars + 1].rsplit(" ", 1)[0]
                body = cut if cut and len(cut) < len(body) else body[:max_chars]
            if len(body) >= min_chars:
                out.append(head + body)
    return out
