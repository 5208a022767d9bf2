"""CUDA-graph replay of the greedy decoding step (``SamplerConfig.cuda_graphs``).

A small masked-diffusion model decodes in a launch-bound regime: a 125M model's forward at batch 8 issues
~300 kernels whose launches take longer on the host than the kernels take on the GPU (measured on one
H100 with ``eval/profile_gpu.py``: the GPU was busy 12% of a dual-cached step's wall time at batch 8,
27% at batch 64). A CUDA graph records every kernel of one sampler step once — the forward (uncached on
the block window's logits, or the block against the dual/prefix KV cache), the greedy confidence step
(:mod:`.fused_step`) and the canvas update — and replays it with one launch.

How the sampler uses it (:func:`mdlm.sampling.sampler._greedy_block`), per block:

* the first step runs eagerly (for a KV cache it is the full forward that refills the cache);
* on the first block only, one more eager step warms up lazily initialised kernels;
* the next step is captured (capture records, it does not run) and then replayed for the block's
  remaining steps. Inputs that change between steps live in fixed tensors: the canvas is updated in
  place by the graph itself, the schedule's count is copied into a (B,) buffer before each replay.

Replays compute exactly what the eager step computes (same kernels, same inputs), so the samples are
the same. Host synchronisations: none per step for the schedule alone (whether the block is finished
is known from the count table), one per step with a confidence threshold or the EOS policy (whether
masked positions are left decides when the block ends) unless the block advance runs on the device
(:mod:`.ahead`). A graph whose capture fails (e.g. a model
whose forward synchronises) warns once and the generation continues eagerly.
"""

from __future__ import annotations

import time
import warnings
from typing import Callable

import torch


class StepGraph:
    """One captured call of ``body`` (no arguments; reads and writes fixed tensors), replayed on demand.

    Raises ``RuntimeError`` from the constructor when the capture fails."""

    def __init__(self, body: Callable[[], object]):
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = body()

    def replay(self) -> None:
        self.graph.replay()


def replay_seconds(body: Callable[[], object], replays: int, runs: int = 3) -> float:
    """Seconds per replay of ``body`` (already warmed up, GPU work only) captured as one CUDA graph and replayed
    ``replays`` times back to back, the best of ``runs`` such runs (a benchmark's figure: the GPU time of the kernels
    with one launch per replay). Raises RuntimeError when the capture fails."""
    torch.cuda.synchronize()
    graph = StepGraph(body)
    best = float("inf")
    for _ in range(max(1, runs)):
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(replays):
            graph.replay()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t) / replays)
    return best


def capture(body: Callable[[], object]) -> StepGraph | None:
    """:class:`StepGraph` of ``body``, or None (with a warning) when the capture fails."""
    try:
        return StepGraph(body)
    except RuntimeError as e:  # a synchronising op, an uncapturable kernel, …
        warnings.warn(f"cuda_graphs: capturing the sampler step failed, decoding eagerly instead ({e})",
                      RuntimeWarning, stacklevel=3)
        return None


class CountedGraph:
    """A :class:`StepGraph` of a step that also advances host-side counters (NFE, positions, …) as it runs eagerly.
    Capturing records kernels without running them, so the counters' advance during the capture is rolled back and
    added again on every :meth:`replay`."""

    def __init__(self, graph: StepGraph, delta: list[int], read: Callable[[], list[int]],
                 write: Callable[[list[int]], None]):
        self.graph, self.delta, self.read, self.write = graph, delta, read, write

    @property
    def out(self) -> object:
        return self.graph.out

    def replay(self) -> None:
        self.graph.replay()
        self.write([v + d for v, d in zip(self.read(), self.delta)])


def capture_counted(body: Callable[[], object], read: Callable[[], list[int]],
                    write: Callable[[list[int]], None]) -> CountedGraph | None:
    """:func:`capture` of ``body`` whose counters (``read`` / ``write``) are left as they were before the capture;
    None (with a warning) when the capture fails."""
    before = read()
    graph = capture(body)
    delta = [a - b for a, b in zip(read(), before)]
    write(before)
    return None if graph is None else CountedGraph(graph, delta, read, write)

