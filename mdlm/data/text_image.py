"""One vocabulary for caption text, class labels and image codes, and the sequences of the text- and
class-conditioned image MDM (a text prefix and an image canvas in one sequence, as MMaDA does — Yang et al. 2025,
"MMaDA: Multimodal Large Diffusion Language Models", §3.1, where image codes extend a text tokenizer's vocabulary).

Ids of :class:`TextImageLayout` (K codes, C classes, T text tokens of the caption tokenizer)::

    0     .. K-1          image codes (so the VQ decodes a generated canvas as it is)
    K     .. K+C-1        class tokens (class c → K + c)
    K+C   .. K+C+T-1      text tokens (tokenizer id t → K + C + t); [MASK] and pad are the tokenizer's own
                          special tokens, shifted the same way (never literal ids)
    vocab_size = K + C + T

Sequence (fixed length ``1 + text_budget + h·w``)::

    [class | MASK] [caption tokens, then pad … up to text_budget | MASK × text_budget] [h·w codes]

The class slot and the caption slots are the *condition*: never masked by the forward process, never scored
(the loss is on image codes only — the caption is what the user types, not something to generate, so the
model's capacity goes to images). An absent condition is [MASK] in its slots: that is the null condition of
classifier-free guidance with the mask token (eMIGM, Zhu et al. 2025), so "no caption" and "caption dropped"
are the same input. A caption of more than ``text_budget`` tokens is an error, never silently cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class TextImageLayout:
    """The id ranges above; ``text_mask_id`` / ``text_pad_id`` are ids *of the caption tokenizer*."""

    codebook_size: int
    num_classes: int
    text_vocab_size: int
    text_budget: int
    text_mask_id: int
    text_pad_id: int

    def __post_init__(self) -> None:
        if min(self.codebook_size, self.num_classes, self.text_vocab_size, self.text_budget) < 1:
            raise ValueError(f"codebook_size, num_classes, text_vocab_size and text_budget must be ≥ 1: {self}")
        for name in ("text_mask_id", "text_pad_id"):
            if not 0 <= getattr(self, name) < self.text_vocab_size:
                raise ValueError(f"{name} {getattr(self, name)} is outside the text vocabulary [0, {self.text_vocab_size})")
        if self.text_mask_id == self.text_pad_id:
            raise ValueError("the caption tokenizer's [MASK] and pad tokens must differ")

    @classmethod
    def from_tokenizer(cls, tokenizer, codebook_size: int, num_classes: int, text_budget: int) -> TextImageLayout:
        """The layout for a caption ``tokenizer`` (its ``mask_token_id`` / ``pad_token_id``; both required)."""
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the caption tokenizer needs a [MASK] and a pad token (mdlm.tokenizers.text.ensure_special_tokens)")
        return cls(int(codebook_size), int(num_classes), len(tokenizer), int(text_budget),
                   int(tokenizer.mask_token_id), int(tokenizer.pad_token_id))

    # ---- id ranges ------------------------------------------------------------------------------
    @property
    def text_offset(self) -> int:
        return self.codebook_size + self.num_classes

    @property
    def mask_id(self) -> int:
        return self.text_offset + self.text_mask_id

    @property
    def pad_id(self) -> int:
        return self.text_offset + self.text_pad_id

    @property
    def vocab_size(self) -> int:
        return self.text_offset + self.text_vocab_size

    @property
    def prefix_len(self) -> int:
        """Condition positions before the image canvas: the class slot + the caption slots."""
        return 1 + self.text_budget

    @property
    def class_token_ids(self) -> list[int]:
        return list(range(self.codebook_size, self.text_offset))

    @property
    def suppress_ids(self) -> list[int]:
        """Ids never sampled at an image position: everything that is not an image code."""
        return list(range(self.codebook_size, self.vocab_size))

    # ---- conversions ----------------------------------------------------------------------------
    def class_token(self, label: int | Tensor) -> int | Tensor:
        """Class label(s) → class token id(s); ValueError outside [0, C)."""
        if isinstance(label, Tensor):
            if label.numel() and (int(label.min()) < 0 or int(label.max()) >= self.num_classes):
                raise ValueError(f"labels must lie in [0, {self.num_classes}), got [{int(label.min())}, {int(label.max())}]")
            return label + self.codebook_size
        if not 0 <= int(label) < self.num_classes:
            raise ValueError(f"label {label} outside [0, {self.num_classes})")
        return self.codebook_size + int(label)

    def split(self, input_ids: Tensor) -> tuple[Tensor, Tensor]:
        """(B, prefix + h·w) → class labels (B,) (−1 where the class slot is [MASK]) and codes (B, h·w);
        ValueError if a code position holds a non-code id (still masked, or text)."""
        cls = input_ids[:, 0]  # (B,)
        labels = torch.where(cls == self.mask_id, torch.full_like(cls, -1), cls - self.codebook_size)
        codes = input_ids[:, self.prefix_len:]  # (B, h·w)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError("code positions hold ids outside [0, codebook_size): still masked or not image codes")
        return labels, codes

    def caption_ids(self, input_ids: Tensor) -> Tensor:
        """(B, L) sequences → (B, text_budget) caption-tokenizer ids (pad and [MASK] included)."""
        return input_ids[:, 1 : self.prefix_len] - self.text_offset

    def to_dict(self) -> dict[str, int | str]:
        return {"kind": "text_image", "codebook_size": self.codebook_size, "num_classes": self.num_classes,
                "text_vocab_size": self.text_vocab_size, "text_budget": self.text_budget,
                "text_mask_id": self.text_mask_id, "text_pad_id": self.text_pad_id, "mask_id": self.mask_id,
                "pad_id": self.pad_id, "vocab_size": self.vocab_size}

    @classmethod
    def from_dict(cls, d: dict) -> TextImageLayout:
        """Inverse of :meth:`to_dict`; the derived ids it stores are checked, not trusted."""
        layout = cls(*(int(d[k]) for k in ("codebook_size", "num_classes", "text_vocab_size", "text_budget",
                                           "text_mask_id", "text_pad_id")))
        for k in ("mask_id", "pad_id", "vocab_size"):
            if k in d and int(d[k]) != getattr(layout, k):
                raise ValueError(f"image_layout says {k} {d[k]} but its ranges give {getattr(layout, k)}")
        return layout


def prefix_len(layout) -> int:
    """Condition positions of any image layout: 1 (class token) for ImageTokenLayout, 1 + budget here."""
    return layout.prefix_len if isinstance(layout, TextImageLayout) else 1


# ---- captions ----------------------------------------------------------------------------------


def caption_token_ids(tokenizer, captions: Sequence[str], layout: TextImageLayout) -> Tensor:
    """Captions → (N, text_budget) *model* ids: the caption's tokens then pad; an empty caption (or None) →
    [MASK] in every slot (no caption = the null condition). ValueError naming the first caption longer than
    the budget."""
    rows = np.full((len(captions), layout.text_budget), layout.pad_id, dtype=np.int64)
    ids = tokenizer([c or "" for c in captions], add_special_tokens=False)["input_ids"]
    for i, (caption, tok) in enumerate(zip(captions, ids)):  # ragged token lists → fixed rows (layout only)
        if len(tok) > layout.text_budget:
            raise ValueError(f"caption {caption!r} is {len(tok)} tokens, longer than the text budget of "
                             f"{layout.text_budget} (shorten the caption; the budget is fixed when the model is trained: recipes/train_image.py --text_budget; words the caption tokenizer never saw split into many pieces)")
        if not tok:
            rows[i] = layout.mask_id
        else:
            rows[i, : len(tok)] = np.asarray(tok, dtype=np.int64) + layout.text_offset
    return torch.from_numpy(rows)


def condition_prefix(layout: TextImageLayout, labels: Tensor, captions: Tensor) -> tuple[Tensor, Tensor]:
    """labels (B,) (−1 = no class) + captions (B, text_budget) model ids → the prefix (B, 1 + budget) and its
    condition mask (B, 1 + budget): True where a real condition token stands (what CFG replaces by [MASK])."""
    cond = labels >= 0  # (B,)
    if bool((labels < -1).any()):
        raise ValueError("labels must be class ids ≥ 0 or −1 (no class)")
    if bool(cond.any()):
        layout.class_token(labels[cond])  # raises on labels ≥ C
    cls = torch.where(cond, labels + layout.codebook_size, torch.full_like(labels, layout.mask_id))  # (B,)
    prefix = torch.cat([cls[:, None], captions], dim=1)  # (B, P)
    return prefix, prefix != layout.mask_id


def text_image_sequences(codes: Tensor, labels: Tensor, captions: Tensor, layout: TextImageLayout) -> Tensor:
    """codes (N, h, w) + labels (N,) + captions (N, text_budget) model ids → (N, 1 + budget + h·w)."""
    prefix, _ = condition_prefix(layout, labels.long(), captions.long())
    return torch.cat([prefix, codes.reshape(codes.shape[0], -1).long()], dim=1)


def decode_captions(tokenizer, input_ids: Tensor, layout: TextImageLayout) -> list[str]:
    """The caption text of each sequence ('' where the caption slots are [MASK])."""
    ids = layout.caption_ids(input_ids)  # (B, budget)
    keep = (ids != layout.text_pad_id) & (ids != layout.text_mask_id)
    return [tokenizer.decode(row[k].tolist()) for row, k in zip(ids, keep)]


def train_caption_tokenizer(captions: Sequence[str], vocab_size: int = 1024):
    """A byte-level BPE trained on the captions (mdlm.tokenizers.text.train_bpe: EOS, pad, [MASK] as specials).

    Why not GPT-2's 50,257 tokens: every image position's logits span the whole shared vocabulary, so a 50k
    text vocabulary would make the output layer ~50× larger than the ~1000 image codes it predicts, for captions
    of a few words. Byte-level, so any prompt still encodes (unseen words as smaller pieces)."""
    from ..tokenizers.text import train_bpe

    texts = [c for c in captions if c]
    if not texts:
        raise ValueError("no captions to train the caption tokenizer on")
    return train_bpe(texts, vocab_size=vocab_size, min_frequency=1)


__all__ = ["TextImageLayout", "caption_token_ids", "condition_prefix", "decode_captions", "prefix_len",
           "text_image_sequences", "train_caption_tokenizer"]
