"""The confidence policy's fast path: its greedy setting (LLaDA's default decoding: temperature 0, confidence
"prob", no choice noise, re-masking or guidance; a threshold and the EOS policy allowed) as one fixed-shape step
on the block window (:func:`.fused_step.greedy_confidence_step`: the same commits up to confidences that agree to
float32 precision), and with ``cuda_graphs`` each block's later steps replayed as one CUDA graph (:mod:`.graphs`).

Host synchronisations: none per step with the schedule's counts alone (the count table, on the host, says how
many masked positions each step leaves); one per step with a threshold or the EOS policy (did the canvas change;
is the block filled). Per block: the first step runs eagerly (for a K/V cache it is the full forward that
refills the cache); on the first block one more eager step warms lazily initialised kernels; the next step is
captured (capture records, it does not run) and replayed for the block's remaining steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .blocks import Block
from .fused_step import greedy_confidence_step
from .graphs import CountedGraph, capture_counted
from .step_graph import GreedyStepGraph
from .step import Sampling, StepReport

Tensor = torch.Tensor


@dataclass
class _Graphs:
    enabled: bool = True
    warmed: bool = False  # one eager step has run with the step shapes (lazy kernel set-up done)
    replays: int = 0


class GreedyStep:
    """Drop-in for :class:`.step.DenoiseStep` when ``config.uses_greedy_step``."""

    def __init__(self, run: Sampling, want_info: bool):
        self.run, self.want_info = run, want_info
        cfg = run.config
        self.graphs = _Graphs() if cfg.cuda_graphs and run.x.is_cuda else None
        use_step_graph = cfg.step_graph and run.x.is_cuda and self.graphs is None
        self.step_graph = GreedyStepGraph(self.fused) if use_step_graph else None
        self.synced = cfg.threshold is not None or run.eos_id is not None or cfg.unmasking != "confidence" \
            or run.stop_ids is not None
        self.rule = "schedule" if cfg.unmasking == "confidence" else cfg.unmasking
        self.n_after: Tensor | None = None  # (B,) filled at each block (see start_block)

    @property
    def graph_replays(self) -> int:
        return self.graphs.replays if self.graphs is not None else 0

    @property
    def graph_capture_failures(self) -> int:
        """Captures that failed: the step graph or the step's cuda_graphs capture (each stops trying after one)."""
        return int(self.graphs is not None and not self.graphs.enabled) + int(
            self.step_graph is not None and self.step_graph.failed)

    @property
    def step_graph_replays(self) -> int:
        return self.step_graph.replays if self.step_graph is not None else 0

    def start_block(self, block: Block) -> None:
        self.block = block
        self.window = torch.arange(block.lo, block.hi, device=self.run.x.device)  # (W,)
        # (B,) the running step's count: ONE fixed tensor for the whole generation — the step graph captured in the
        # first block reads this storage in every later block, so it is refilled, never replaced
        if self.n_after is None:
            self.n_after = block.counts[:, 1].clone()
        else:
            self.n_after.copy_(block.counts[:, 1])
        self.graph: CountedGraph | None = None

    def fused(self, c: Tensor, window: Tensor, blk: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The step after the forward: logits c (B, W, V) → (new canvas, committed, flags)."""
        run, cfg = self.run, self.run.config
        return greedy_confidence_step(c, run.x, window, blk, self.n_after, run.suppressed(c.shape[-1]), run.gen,
                                      run.mask_id, run.eos_id, cfg.threshold, self.rule, cfg.factor, cfg.eb_gamma,
                                      run.stop_ids, run.early_eos_id)

    def body(self) -> tuple[Tensor, Tensor]:
        run, blk = self.run, self.block
        c, _ = run.runner.window(run.x, False, blk.lo, blk.hi)  # (B, W, V)
        if self.step_graph is None:
            new, committed, flags = self.fused(c, self.window, blk.blk)
        else:  # the step's kernels as one replay (their outputs are the graph's: copy what is kept)
            new, committed, flags = self.step_graph(c, self.window, blk.blk)
            committed = committed.clone() if self.want_info else committed
        run.x.copy_(new)
        return committed, flags

    def replay(self) -> tuple[Tensor, Tensor] | None:
        """Capture the step once per block (after a warm-up), then replay it; None: run it eagerly."""
        runner, graphs = self.run.runner, self.graphs
        if self.graph is None and graphs.warmed:
            self.graph = capture_counted(self.body, runner.counters, runner.set_counters)  # records, does not run
            graphs.enabled = self.graph is not None
            if self.graph is None:
                runner.invalidate()  # the failed capture left unexecuted logits behind
        if self.graph is None:
            return None
        self.graph.replay()
        graphs.replays += 1
        committed, flags = self.graph.out
        return (committed.clone() if self.want_info else committed), flags

    def __call__(self, block: Block, i: int) -> StepReport:
        run = self.run
        frac = run.masked_fraction() if self.want_info else None
        self.n_after.copy_(block.counts[:, i + 1])
        if not run.config.reuse_logits:
            run.runner.invalidate()
        out = None
        if self.graphs is not None and self.graphs.enabled and i > 0 and run.runner.c is None:
            out = self.replay()
        if out is None:
            out = self.body()
            if self.graphs is not None and i > 0:
                self.graphs.warmed = True
        committed, flags = out
        if self.synced:
            changed, left, early = flags.tolist()  # the step's one host synchronisation
            run.early_filled += early
        else:  # exact without EOS policy or threshold: each row commits counts[i] − counts[i+1]
            changed = bool((block.counts_cpu[:, i] > block.counts_cpu[:, i + 1]).any())
            left = bool(block.counts_cpu[:, i + 1].max() > 0)
        if changed:
            run.runner.invalidate()
        return StepReport(committed, None, frac, run.no_guidance, finished=not left)
