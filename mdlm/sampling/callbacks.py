"""Per-step callbacks: ``callback(step, canvas, info)`` is called after every sampler step.

``step`` counts from 0 over all blocks; ``canvas`` is a copy of the (B, L) canvas after the step;
``info`` is a :class:`StepInfo`. Use it for progress bars or to watch tokens appear, e.g.::

    def show(step, canvas, info):
        print(step, info.block, int(info.committed.sum()), tokenizer.decode(canvas[0]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class StepInfo:
    """What happened in one step.

    Attributes:
        step: global step index (0-based, over all blocks).
        block: block index; ``step_in_block`` its step index; ``steps_in_block`` its step budget.
        committed: (B, L) bool, positions unmasked in this step (EOS fill included).
        remasked: (B, L) bool, committed tokens sent back to [MASK] in this step.
        masked_fraction: (B,) float, fraction of each row's generated positions masked *before* it.
        guided: (B,) bool, rows that received classifier-free guidance.
        nfe: model evaluations so far (see ``SampleOutput.nfe``).
        max_steps: the total step budget (sum of the per-block budgets); with ``threshold`` or
            EOS stopping the loop may end earlier.
    """

    step: int
    block: int
    step_in_block: int
    steps_in_block: int
    committed: Tensor
    remasked: Tensor
    masked_fraction: Tensor
    guided: Tensor
    nfe: int
    max_steps: int


Callback = Callable[[int, Tensor, StepInfo], None]


def compose(*callbacks: Callback | None) -> Callback:
    """One callback that calls each given (non-None) callback in order."""
    cbs = [cb for cb in callbacks if cb is not None]

    def run(step: int, canvas: Tensor, info: StepInfo) -> None:
        for cb in cbs:
            cb(step, canvas, info)

    return run


def progress_callback(print_fn: Callable[[str], None] = print, every: int = 1) -> Callback:
    """A minimal text progress report: step, block, tokens committed, NFE."""

    def run(step: int, canvas: Tensor, info: StepInfo) -> None:
        if step % every == 0:
            print_fn(f"step {step + 1}/{info.max_steps} block {info.block} "
                     f"committed {int(info.committed.sum())} nfe {info.nfe}")

    return run
