"""The block plan: semi-autoregressive blocks over each row's generated positions and each block's step budget
and commit counts (LLaDA §2.4; the counts of :mod:`mdlm.schedules`).

Blocks of ``block_length`` run left to right over each row's generated positions; ``steps`` are split over
the blocks as evenly as possible (the first ``steps % num_blocks`` get one more); a block never gets more steps
than it has positions. Per row and block, after step i exactly ``counts[i+1]`` positions stay masked:
``masked_counts(N_b, S_b)`` (MaskGIT rule, any γ schedule) or ``even_masked_counts`` (``schedule="even"``, LLaDA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from mdlm.schedules import even_masked_counts, get_schedule

Tensor = torch.Tensor


@dataclass
class Block:
    """One block: index ``b``, ``S`` steps, window columns [lo, hi) of the canvas, ``blk`` (B, W) bool its
    positions in the window, ``counts`` (B, S + 1) masked positions left after each step (and on the CPU)."""

    b: int
    S: int
    lo: int
    hi: int
    blk: Tensor
    counts: Tensor
    counts_cpu: Tensor


class BlockPlan:
    """The blocks of one generation. gen (B, L) bool; n_max the longest row's generated positions."""

    def __init__(self, gen: Tensor, n_max: int, steps: int, block_length: int | None, schedule: str):
        bl = block_length or n_max
        nb = math.ceil(n_max / bl)
        if steps < nb:
            raise ValueError(f"steps ({steps}) must be ≥ the number of blocks ({nb} blocks of {bl} positions)")
        rank = gen.long().cumsum(dim=1) - 1  # (B, L) index among the row's generated positions
        self.gen = gen
        self.block_id = torch.where(gen, rank // bl, torch.full_like(rank, -1))  # (B, L)
        self.budgets = [steps // nb + int(j < steps % nb) for j in range(nb)]
        self.max_steps = sum(self.budgets)
        self.schedule = None if schedule == "even" else get_schedule(schedule)

    def blocks(self, x: Tensor, mask_id: int) -> Iterator[Block]:
        """The blocks in order, each made when reached (from the canvas ``x`` as it is then)."""
        col = torch.arange(x.shape[1], device=x.device)
        for b, budget in enumerate(self.budgets):
            in_block = self.gen & (self.block_id == b)  # (B, L)
            n_block = (in_block & (x == mask_id)).sum(dim=1)  # (B,)
            if int(n_block.max()) == 0:
                continue
            S = min(budget, int(n_block.max()))
            n_cpu = n_block.cpu()  # count tables on the CPU: a short loop over steps, not S tiny GPU kernels
            counts_cpu = even_masked_counts(n_cpu, S) if self.schedule is None else self.schedule.masked_counts(n_cpu, S)
            cols = col[in_block.any(dim=0)]
            lo, hi = int(cols[0]), int(cols[-1]) + 1
            yield Block(b, S, lo, hi, in_block[:, lo:hi], counts_cpu.to(x.device), counts_cpu)
