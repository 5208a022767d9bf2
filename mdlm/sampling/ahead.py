"""Launch-ahead decoding: the block's progress kept on the device, so an adaptive greedy step needs no host sync.

A threshold, factor or EB step (:mod:`.fused_step`) commits a number of tokens only the device knows, so the
host loop of :mod:`.greedy` reads a flag back after every step ("is the block filled?") before it launches the
next one. At batch 1 the GPU then idles while the host learns the answer and launches again: measured on one
H200 (125M model, 1,024 tokens, block 32, compiled, CUDA graphs), 1.147 ms a threshold step against 1.064 ms a
one-token step of the same forward, which needs no such read (docs/benchmarks/decoding.md).

Here every step also advances the block on the device: after the commit, a block with nothing masked left moves
the window to the next block (its columns, block mask and count table are rows of tables made once per
generation), and a step after the last block commits nothing. The host launches steps without reading anything,
``blocks left`` of them at a time — every unfinished block needs one step at least, so none of them is wasted —
and reads the state (block, step in block, steps run) once per such run: about ``S̄ · ln(NB) + S̄`` reads for
``NB`` blocks of ``S̄`` steps on average (~50 instead of ~350 at 1,024 tokens, ~11 steps a block), every one
while the GPU still has steps queued except the last few. The commits, the canvas and the NFE are those of the
synchronised loop (tests/test_launch_ahead.py).

It applies (``MDLMGenerationConfig.launch_ahead``, on by default) to the greedy step with a rule that needs the
flag (a threshold, ``fast_dllm``, ``eb``) and no EOS policy (``stop_at_eos`` with an EOS id, ``eos_early_stop``:
they fill later blocks, so a block's steps would no longer be bounded below), without a K/V cache (a cached
block's first call is another kind of step), on a model that reads its window from device tensors
(``supports_logits_window``), with every block of one width, and with no callback, streamer or history (they
want the canvas of every step on the host). Otherwise the loop of :mod:`.greedy` runs, unchanged.
"""

from __future__ import annotations

import torch

from .blocks import Block
from .graphs import capture_counted
from .greedy import GreedyStep

Tensor = torch.Tensor


def launch_ahead_applies(stepper: object, per_step_output: bool) -> bool:
    """Whether :class:`LaunchAhead` can run this generation, but for the blocks' widths (see the module docstring;
    ``per_step_output``: a callback, streamer or history wants every step's canvas)."""
    if not isinstance(stepper, GreedyStep) or per_step_output:
        return False
    run, runner = stepper.run, stepper.run.runner
    no_cache = not runner.blocks and not runner.exact and runner.partial is None and runner.window_fn is not None
    reused = stepper.graphs is None or stepper.graphs.reuse  # with graphs: one capture serves every block
    return (bool(run.config.launch_ahead) and stepper.synced and run.eos_id is None and run.stop_ids is None
            and no_cache and reused)


def one_width(blocks: list[Block]) -> bool:
    """Every block has the same window width (one set of window tensors, one graph)."""
    return len({b.hi - b.lo for b in blocks}) == 1


class LaunchAhead:
    """Runs a whole generation of :class:`.greedy.GreedyStep` steps with the block advance on the device.

    ``blocks``: every block of the generation, made before the first step (without an EOS policy a block's canvas
    changes only at its own steps, so the blocks made up front are those the loop would make when it reaches them).
    """

    def __init__(self, stepper: GreedyStep, blocks: list[Block]):
        self.stepper, self.blocks = stepper, blocks
        run = stepper.run
        dev, B = run.x.device, run.x.shape[0]
        self.nb = len(blocks)
        self.cols = torch.stack([torch.arange(b.lo, b.hi, device=dev) for b in blocks])  # (NB, W)
        self.blk = torch.stack([b.blk for b in blocks])  # (NB, B, W)
        self.s_max = max(b.S for b in blocks)
        counts = torch.zeros(self.nb, B, self.s_max + 1, dtype=torch.long)  # (NB, B, S+1), 0 after a block's steps
        for k, b in enumerate(blocks):
            counts[k, :, : b.S + 1] = b.counts_cpu
        self.counts = counts.to(dev)
        self.state = torch.zeros(3, dtype=torch.long, device=dev)  # [block, step in block, steps run]
        self.reads = 0  # host synchronisations (state read-backs)

    def _start(self) -> None:
        stepper, runner, first = self.stepper, self.stepper.run.runner, self.blocks[0]
        runner.start_block()
        runner.use_fixed_window(stepper.run.x.device)
        runner.set_window(first.lo, first.hi)
        stepper.start_block(first)  # window, block mask and n_after buffers of block 0

    def advance(self, flags: Tensor) -> None:
        """After a step: the next block when this one is filled (flags[1] == 0), the next step otherwise; the
        window, block mask and count buffers refilled from the tables (device ops only, no host sync)."""
        st, runner = self.state, self.stepper.run.runner
        active = st[0] < self.nb  # () bool: a step of a real block (False: the generation is finished)
        filled = active & (flags[1] == 0)
        b = st[0] + filled.long()
        i = torch.where(filled, torch.zeros_like(st[1]), st[1] + active.long())
        st.copy_(torch.stack([b, i, st[2] + active.long()]))
        k = b.clamp_max(self.nb - 1).view(1)  # (1,) the block the next step reads (the last one once finished)
        cols = self.cols.index_select(0, k)[0]  # (W,)
        self.stepper.window.copy_(cols)
        runner.fixed.copy_cols(cols)
        self.stepper.blk.copy_(self.blk.index_select(0, k)[0])  # (B, W)
        j = (i + 1).clamp_max(self.s_max).view(1)
        self.stepper.n_after.copy_(self.counts.index_select(0, k)[0].index_select(1, j)[:, 0])  # (B,)

    def body(self) -> tuple[Tensor, Tensor]:
        """One step: forward, greedy step, canvas update, block advance (what a CUDA graph captures)."""
        self.stepper.run.runner.invalidate()  # the canvas changed at the last step (or the window moved)
        committed, flags = self.stepper.body()
        self.advance(flags)
        return committed, flags

    def step(self) -> None:
        """One step, replayed from a CUDA graph once one is captured (after the step's eager warm-up runs)."""
        graphs, runner, kind = self.stepper.graphs, self.stepper.run.runner, ("ahead",)
        if graphs is None or not graphs.enabled:
            self.body()
            return
        graph = graphs.captured.get(kind)
        if graph is None and graphs.warm.get(kind, 0) >= graphs.warm_runs:
            graph = capture_counted(self.body, runner.counters, runner.set_counters)  # records, does not run
            graphs.enabled = graph is not None
            if graph is not None:
                graphs.captured[kind] = graph
        if graph is None:
            self.body()
            graphs.warm[kind] = graphs.warm.get(kind, 0) + 1
            return
        graph.replay()
        graphs.replays += 1

    def run(self) -> int:
        """Decode every block; returns the steps run."""
        self._start()
        while True:
            block, _, steps = self.state.tolist()  # the one host synchronisation of a run of steps
            self.reads += 1
            if block >= self.nb:
                return steps
            for _ in range(self.nb - block):  # each unfinished block needs a step at least: none is wasted
                self.step()
