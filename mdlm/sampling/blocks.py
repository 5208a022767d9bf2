"""The block plan: semi-autoregressive blocks over each row's generated positions and each block's step budget
and commit counts (LLaDA §2.4; the counts of :mod:`mdlm.schedules`).

Blocks of ``block_length`` run left to right over each row's generated positions; ``steps`` are split over
the blocks as evenly as possible (the first ``steps % num_blocks`` get one more); a block never gets more steps
than it has positions. Per row and block, after step i exactly ``counts[i+1]`` positions stay masked:
``masked_counts(N_b, S_b)`` (MaskGIT rule, any γ schedule) or ``even_masked_counts`` (``schedule="even"``, LLaDA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from mdlm.schedules import even_masked_counts, get_schedule

Tensor = torch.Tensor


@dataclass
class Block:
    """One block: index ``b``, ``S`` steps (the most any row takes), window columns [lo, hi) of the canvas, ``blk``
    (B, W) bool its positions in the window, ``counts`` (B, S + 1) masked positions left after each step (and on
    the CPU), ``S_row`` (B,) each row's own step count (its counts reach 0 there and stay)."""

    b: int
    S: int
    lo: int
    hi: int
    blk: Tensor
    counts: Tensor
    counts_cpu: Tensor
    S_row: Tensor


class BlockPlan:
    """The blocks of one generation, planned per row: a row gets the blocks and step budgets it would get alone
    (its own number of generated positions, hence of blocks), so it decodes the same in any batch.

    gen (B, L) bool; steps the requested steps (each row clamps them to its own generated positions)."""

    def __init__(self, gen: Tensor, steps: int, block_length: int | None, schedule: str):
        n_row = gen.sum(dim=1).cpu()  # (B,)
        bl = torch.full_like(n_row, block_length) if block_length else n_row.clamp_min(1)
        nb = (n_row + bl - 1) // bl  # (B,) blocks per row
        if steps < int(nb.max()):
            b = int(nb.argmax())
            raise ValueError(f"steps ({steps}) must be ≥ the number of blocks ({int(nb[b])} blocks of {int(bl[b])} "
                             "positions)")
        steps_row = torch.clamp(n_row, max=steps)  # (B,)
        j = torch.arange(int(nb.max()))  # (NB,)
        nbc = nb.clamp_min(1).unsqueeze(1)  # (B, 1)
        self.budgets = torch.where(j < nb.unsqueeze(1), steps_row.unsqueeze(1) // nbc
                                   + (j < steps_row.unsqueeze(1) % nbc).long(), 0)  # (B, NB)
        rank = gen.long().cumsum(dim=1) - 1  # (B, L) index among the row's generated positions
        self.gen = gen
        self.block_id = torch.where(gen, rank // bl.to(gen.device).unsqueeze(1), torch.full_like(rank, -1))  # (B, L)
        self.max_steps = int(self.budgets.max(dim=0).values.sum())
        self.schedule = None if schedule == "even" else get_schedule(schedule)

    def counts(self, n: Tensor, S_row: Tensor, S: int) -> Tensor:
        """(B, S + 1) masked counts: row r follows its schedule over its own S_row[r] steps, then stays at 0."""
        out = torch.zeros(n.shape[0], S + 1, dtype=torch.long)
        for s in S_row.unique().tolist():  # the distinct step counts (one for rows of equal length)
            rows = S_row == s
            if s > 0:
                c = even_masked_counts(n[rows], s) if self.schedule is None else self.schedule.masked_counts(n[rows], s)
                out[rows, : s + 1] = c
        return out

    def blocks(self, x: Tensor, mask_id: int) -> Iterator[Block]:
        """The blocks in order, each made when reached (from the canvas ``x`` as it is then)."""
        col = torch.arange(x.shape[1], device=x.device)
        for b in range(self.budgets.shape[1]):
            in_block = self.gen & (self.block_id == b)  # (B, L)
            n_block = (in_block & (x == mask_id)).sum(dim=1)  # (B,)
            if int(n_block.max()) == 0:
                continue
            n_cpu = n_block.cpu()  # count tables on the CPU: a short loop over steps, not S tiny GPU kernels
            S_row = torch.minimum(self.budgets[:, b], n_cpu)  # (B,)
            S = int(S_row.max())
            counts_cpu = self.counts(n_cpu, S_row, S)
            cols = col[in_block.any(dim=0)]
            lo, hi = int(cols[0]), int(cols[-1]) + 1
            yield Block(b, S, lo, hi, in_block[:, lo:hi], counts_cpu.to(x.device), counts_cpu, S_row.to(x.device))
