"""End-of-sequence policy.

With ``eos_id`` given and ``SamplerConfig.stop_at_eos`` (default True), after every step each row is
checked: if it has a committed EOS at a generated position and *every* still-masked generated
position of the row lies to the right of the first such EOS, those masked positions are filled with
EOS and the row is finished (it commits nothing more; the loop ends once all rows are finished, so
NFE drops). Tokens left of the EOS are never touched; a masked position left of an EOS keeps the row
going. This matches LLaDA-style models, which pad the answer with EOS after it ends.

``trim_at_eos`` cuts sequences at their first EOS for decoding.
"""

from __future__ import annotations

from typing import Sequence

import torch

Tensor = torch.Tensor


def eos_fill(x: Tensor, generate_mask: Tensor, mask_id: int, eos_id: int) -> Tensor:
    """Rows whose masked generated positions all follow a committed EOS → fill them with EOS.

    x (B, L) long, generate_mask (B, L) bool. Returns the (B, L) bool mask of positions filled
    (``x`` is updated in place).
    """
    L = x.shape[1]
    col = torch.arange(L, device=x.device).expand_as(x)
    masked = generate_mask & (x == mask_id)
    eos = generate_mask & (x == eos_id)
    first_eos = torch.where(eos, col, L).min(dim=1).values  # (B,)
    first_masked = torch.where(masked, col, L).min(dim=1).values  # (B,)
    done = (first_eos < first_masked) & (first_masked < L)  # (B,)
    fill = masked & done.unsqueeze(1)
    x.masked_fill_(fill, eos_id)
    return fill


def eos_lengths(seqs: Tensor, eos_id: int, keep_eos: bool = False) -> Tensor:
    """Length of every row up to its first ``eos_id`` (inclusive if ``keep_eos``); L if none. (B,) long."""
    B, L = seqs.shape
    col = torch.arange(L, device=seqs.device).expand(B, L)
    first = torch.where(seqs == eos_id, col, L).min(dim=1).values  # (B,)
    return torch.where(first < L, first + int(keep_eos), first)


def trim_at_eos(seqs: Tensor | Sequence[Sequence[int]], eos_id: int, keep_eos: bool = False) -> list[list[int]]:
    """Cut every row at its first ``eos_id`` (dropped unless ``keep_eos``) → ragged Python lists.

    Pass the generated part (e.g. ``out.sequences[:, prompt_len:]``) if the prompt may itself contain
    EOS. Rows of unequal length (a list of lists) are accepted too."""
    if not isinstance(seqs, Tensor):
        rows = [list(map(int, r)) for r in seqs]
        if len({len(r) for r in rows}) > 1:  # ragged input: no tensor to vectorise over
            return [r[: r.index(eos_id) + int(keep_eos)] if eos_id in r else r for r in rows]
        seqs = torch.tensor(rows, dtype=torch.long).reshape(len(rows), -1)
    lengths = eos_lengths(seqs, eos_id, keep_eos).tolist()
    return [row[:n] for row, n in zip(seqs.tolist(), lengths)]
