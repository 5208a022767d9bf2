"""eval/bench_sampler.py's per-step overhead: two runs of one generation at different step counts cancel the costs
that every generation pays once (eager first steps, graph captures, block set-up)."""

from __future__ import annotations

import pytest
from scripts import load_script


def test_per_step_overhead_cancels_fixed_costs():
    bench = load_script("eval/bench_sampler.py")
    t_fwd, fixed, extra = 2e-3, 0.05, 4e-5  # forward 2 ms; 50 ms paid once per call; 40 µs outside each forward
    t1, t2 = fixed + 128 * (t_fwd + extra), fixed + 256 * (t_fwd + extra)
    assert bench.per_step_overhead_pct(t1, 128, t2, 256, t_fwd) == pytest.approx(2.0)
    assert bench.per_step_overhead_pct(t1, 128, t1, 128, t_fwd) is None  # no extra forwards: nothing to compare
