"""The confidence policy's fast path: its greedy setting (LLaDA's default decoding: temperature 0, confidence
"prob", no choice noise, re-masking or guidance; a threshold and the EOS policy allowed) as one fixed-shape step
on the block window (:func:`.fused_step.greedy_confidence_step`: the same commits up to confidences that agree to
float32 precision), and with ``cuda_graphs`` each block's later steps replayed as one CUDA graph (:mod:`.graphs`).

Host synchronisations: none per step with the schedule's counts alone (the count table, on the host, says how
many masked positions each step leaves); one per step with a threshold or the EOS policy (did the canvas change;
is the block filled) — for an adaptive rule without EOS policy or cache, one per run of steps instead
(:mod:`.ahead`, ``launch_ahead``).

CUDA graphs (``cuda_graphs``): a kind of step runs eagerly the first time it is seen (lazy kernel set-up), is
captured the second time (capture records, it does not run) and replayed from then on. With
``cuda_graph_reuse`` (the default) and a runner that reads the window from device tensors (no cache or the dual
cache, :meth:`.runner.ModelRunner.use_fixed_window`), the kinds are, per block width, "a later call" and, with the
dual cache, "a block's first call" (its full refill): one capture (two with the dual cache) serves the whole
generation. Otherwise (prefix cache, a model without a logits window, reuse off) the block's window is baked into
the graph, so each block captures its own graph for its steps after the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .blocks import Block
from .compiled import compiled_function
from .fused_step import greedy_confidence_step
from .row_stats import backend_for
from .graphs import capture_counted
from .step_graph import GreedyStepGraph
from .step import Sampling, StepReport

Tensor = torch.Tensor


@dataclass
class _Graphs:
    enabled: bool = True
    reuse: bool = False  # graphs kept across blocks (the runner reads a fixed window)
    warm: dict = field(default_factory=dict)  # kind of step → eager runs so far (lazy set-up, compilation)
    # eager runs of a kind before its capture: 1 (lazy kernel set-up); 2 with torch_compile, whose second call of a
    # kind can trace a new graph (the dual cache's first refill in place) — compiling inside a capture breaks it
    warm_runs: int = 1
    captured: dict = field(default_factory=dict)  # kind of step → CountedGraph
    replays: int = 0


def _graphs_possible(x: Tensor) -> bool:
    """CUDA graphs need the canvas on a GPU (a seam for the CPU tests of the capture bookkeeping)."""
    return x.is_cuda


def _refill(buf: Tensor | None, value: Tensor) -> Tensor:
    """``value`` in ``buf``'s storage when the shapes match (what a captured graph reads), else a copy of it (never
    a view: the buffer is written in place later)."""
    if buf is None or buf.shape != value.shape:
        return value.clone()
    return buf.copy_(value)


class GreedyStep:
    """Drop-in for :class:`.step.DenoiseStep` when ``config.uses_greedy_step``."""

    def __init__(self, run: Sampling, want_info: bool):
        self.run, self.want_info = run, want_info
        cfg = run.config
        self.graphs = _Graphs(warm_runs=1 + cfg.torch_compile) if cfg.cuda_graphs and _graphs_possible(run.x) else None
        if self.graphs is not None and cfg.cuda_graph_reuse:
            self.graphs.reuse = run.runner.use_fixed_window(run.x.device)
        use_step_graph = cfg.step_graph and run.x.is_cuda and self.graphs is None
        self.step_graph = GreedyStepGraph(self.fused) if use_step_graph else None
        self.synced = cfg.threshold is not None or run.eos_id is not None or cfg.unmasking != "confidence" \
            or run.stop_ids is not None
        self.rule = "schedule" if cfg.unmasking == "confidence" else cfg.unmasking
        self.n_after: Tensor | None = None  # (B,) filled at each block (see start_block)
        self.window: Tensor | None = None  # (W,) the block's canvas columns
        self.blk: Tensor | None = None  # (B, W) the window positions in the block

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
        width_changed = self.window is not None and self.window.shape[0] != block.hi - block.lo
        self.block = block
        # the step's inputs that change per block live in fixed storage (refilled, never replaced, while the width
        # stays): a graph captured in an earlier block reads them — the running count, the window, the block mask
        self.window = _refill(self.window, torch.arange(block.lo, block.hi, device=self.run.x.device))  # (W,)
        self.blk = _refill(self.blk, block.blk)  # (B, W)
        self.n_after = _refill(self.n_after, block.counts[:, 1])  # (B,)
        if self.graphs is not None:
            if self.graphs.reuse:
                self.run.runner.set_window(block.lo, block.hi)
            if not self.graphs.reuse or width_changed:  # the window is baked into the graph / another width's graphs
                self.graphs.captured.clear()  # read buffers that are no longer refilled: capture anew

    def fused(self, c: Tensor, window: Tensor, blk: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The step after the forward: logits c (B, W, V) → (new canvas, committed, flags)."""
        run, cfg = self.run, self.run.config
        step = compiled_function(greedy_confidence_step) if cfg.torch_compile else greedy_confidence_step
        return step(c, run.x, window, blk, self.n_after, run.suppressed(c.shape[-1]), run.gen, run.mask_id, run.eos_id,
                    cfg.threshold, self.rule, cfg.factor, cfg.eb_gamma, run.stop_ids, run.early_eos_id, backend_for(c))

    def body(self) -> tuple[Tensor, Tensor]:
        run, blk = self.run, self.block
        c, _ = run.runner.window(run.x, False, blk.lo, blk.hi)  # (B, W, V)
        if self.step_graph is None:
            new, committed, flags = self.fused(c, self.window, self.blk)
        else:  # the step's kernels as one replay (their outputs are the graph's: copy what is kept)
            new, committed, flags = self.step_graph(c, self.window, self.blk)
            committed = committed.clone() if self.want_info else committed
        run.x.copy_(new)
        return committed, flags

    def kind(self, i: int) -> tuple | None:
        """Which graph serves step ``i`` of the block, None: it runs eagerly (no graphs, a failed capture, logits
        kept from the last step, or the block's first call when graphs are per block)."""
        graphs, runner, blk = self.graphs, self.run.runner, self.block
        if graphs is None or not graphs.enabled or runner.c is not None:
            return None
        width = blk.hi - blk.lo
        if graphs.reuse:
            return ("refill" if runner.fills_next(blk.lo, blk.hi) else "step", width)
        return ("step", width) if i > 0 else None

    def replay(self, kind: tuple) -> tuple[Tensor, Tensor] | None:
        """Replay the graph of this kind of step, capturing it first if it ran eagerly once; None: run eagerly."""
        runner, graphs = self.run.runner, self.graphs
        graph = graphs.captured.get(kind)
        if graph is None:
            if graphs.warm.get(kind, 0) < graphs.warm_runs:
                return None
            span = runner.span
            graph = capture_counted(self.body, runner.counters, runner.set_counters)  # records, does not run
            graphs.enabled = graph is not None
            if graph is None:  # nothing the capture recorded ran: the logits it left and a K/V refill it "did" are void
                runner.invalidate()
                runner.span = span
                return None
            graphs.captured[kind] = graph
        graph.replay()
        runner.replayed(self.block.lo, self.block.hi)
        graphs.replays += 1
        committed, flags = graph.out
        return (committed.clone() if self.want_info else committed), flags

    def __call__(self, block: Block, i: int) -> StepReport:
        run = self.run
        frac = run.masked_fraction() if self.want_info else None
        self.n_after.copy_(block.counts[:, i + 1])
        if not run.config.reuse_logits:
            run.runner.invalidate()
        kind = self.kind(i)
        out = None if kind is None else self.replay(kind)
        if out is None:
            out = self.body()
            if kind is not None:
                self.graphs.warm[kind] = self.graphs.warm.get(kind, 0) + 1
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
