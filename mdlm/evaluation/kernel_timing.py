"""Microbenchmark helpers for one small piece of GPU work (a decoding step, a block advance): its time as CUDA-graph
replays and the kernels it launches. Used by ``eval/bench_greedy_step.py`` and ``eval/bench_advance.py``."""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from mdlm.sampling.graphs import replay_seconds


def graph_us(fn: Callable[[], object], replays: int, cuda: bool) -> float:
    """Microseconds per call of ``fn``: on a GPU captured as one CUDA graph and replayed ``replays`` times back to
    back (best of 3 runs, :func:`.replay_seconds`), on a CPU plain calls; three warm-up calls first."""
    for _ in range(3):
        fn()
    if not cuda:
        t = time.perf_counter()
        for _ in range(replays):
            fn()
        return 1e6 * (time.perf_counter() - t) / replays
    return 1e6 * replay_seconds(fn, replays)


def kernels(fn: Callable[[], object], cuda: bool) -> int | None:
    """GPU operations one eager call of ``fn`` launches (the profiler's CUDA events: kernels and device copies); None
    on a CPU."""
    if not cuda:
        return None
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
