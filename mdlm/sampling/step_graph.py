"""The greedy step's own kernels as one CUDA graph (``step_graph``, on by default on a GPU).

Without ``cuda_graphs`` the forward runs eagerly (any callable, any cache mode, a forward that synchronises);
what follows it — the fixed-shape greedy step of :func:`.fused_step.greedy_confidence_step`, some 40 small kernels
(suppression, argmax, log-softmax, the count rule, the rank sort, the canvas update, the EOS policies) — is what
the sampler adds to every forward. On a GPU those launches, not their arithmetic, are the sampler's overhead at
small batches. This module captures them once and replays them with one launch per step; the step reads the
logits from a fixed buffer (one device copy) and the window and block mask from fixed tensors refilled at each
block, so one graph serves every block of the same width.

The replay runs the kernels the eager step runs, on the same inputs, so the samples are the same
(tests/test_cuda_graphs.py, GPU). A capture that fails warns once and the step runs eagerly.
"""

from __future__ import annotations

from typing import Callable

import torch

from .graphs import StepGraph, capture

Tensor = torch.Tensor


class GreedyStepGraph:
    """Replays ``step(logits, window, blk)`` (fixed-shape, no host synchronisation) as a CUDA graph.

    ``__call__(logits, window, blk)`` returns the step's outputs: eagerly the first time a shape is seen (the
    warm-up; the graph is captured right after), from a replay afterwards."""

    def __init__(self, step: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, ...]]):
        self.step = step
        self.graph: StepGraph | None = None
        self.key: tuple | None = None
        self.failed = False
        self.replays = 0

    def _capture(self, logits: Tensor, window: Tensor, blk: Tensor) -> None:
        self.buf, self.win, self.blk = logits.clone(), window.clone(), blk.clone()
        self.graph = capture(lambda: self.step(self.buf, self.win, self.blk))
        self.failed = self.graph is None
        self.key = (tuple(logits.shape), logits.dtype, tuple(blk.shape))

    def __call__(self, logits: Tensor, window: Tensor, blk: Tensor) -> tuple[Tensor, ...]:
        key = (tuple(logits.shape), logits.dtype, tuple(blk.shape))
        if self.failed or self.graph is None or key != self.key:
            out = self.step(logits, window, blk)  # eager: this step's result (and the kernels' warm-up)
            if not self.failed:
                self._capture(logits, window, blk)  # records, does not run
            return out
        self.buf.copy_(logits)
        self.win.copy_(window)
        self.blk.copy_(blk)
        self.graph.replay()
        self.replays += 1
        return self.graph.out
