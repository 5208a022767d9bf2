"""What the training recipe reports about its own speed, and the AR-vs-MDM gap tool."""

import math
from types import SimpleNamespace

import pytest

from mdlm.evaluation.ar_vs_mdm import best, eval_curve, gap
from mdlm.training import throughput as tp


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _state(step):
    return SimpleNamespace(global_step=step, log_history=[{"loss": 1.0}], is_world_process_zero=False)


def test_steady_throughput_excludes_warmup_evaluation_and_profiled_steps(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(tp.time, "perf_counter", clock)
    cb = tp.ThroughputCallback(tokens_per_step=100, flops_per_token=1.0, peak_flops=1000.0, profiled=(21, 25))
    args = SimpleNamespace(world_size=1)
    cb.on_train_begin(args, _state(0), None)
    for step, dt in ((10, 50.0), (20, 1.0)):  # warm-up (compilation), then one steady interval of 10 steps in 1 s
        clock.t += dt
        cb.on_log(args, _state(step), None, logs={"loss": 1.0})
    clock.t += 30.0  # an evaluation right after the log at step 20: restarts the interval
    cb.on_evaluate(args, _state(20), None)
    clock.t += 9.0  # steps 21-30 include profiled ones: flagged, not steady
    st = _state(30)
    cb.on_log(args, st, None, logs={"loss": 1.0})
    assert st.log_history[-1].get("profiled") is True
    clock.t += 1.0
    cb.on_log(args, _state(40), None, logs={"loss": 1.0})
    s = cb.summary(world_size=1)
    assert s["steady_steps"] == 20 and s["tokens_per_s"] == pytest.approx(1000.0)  # 2000 tokens in 2 s
    assert s["mfu"] == pytest.approx(1.0)


def test_throughput_arguments_reject_bad_values():
    with pytest.raises(ValueError, match="--peak_tflops must be > 0"):
        tp.ThroughputArguments(peak_tflops=0)
    with pytest.raises(ValueError, match="--profile_steps is START:COUNT"):
        tp.ThroughputArguments(profile_steps="5")
    assert tp.peak_flops(tp.ThroughputArguments(peak_tflops=700))[0] == 700e12


def test_gap_pairs_equal_steps_and_refuses_unequal_tokens():
    ar = eval_curve([{"step": 10, "eval_nll": 3.0}, {"step": 20, "eval_nll": 2.5}, {"loss": 9}], tokens_per_step=8)
    mdm = eval_curve([{"step": 10, "eval_nll": 3.5}, {"step": 20, "eval_nll": 3.0}], tokens_per_step=8)
    rows = gap(ar, mdm)
    assert [r["tokens"] for r in rows] == [80, 160]
    assert rows[-1]["ratio"] == pytest.approx(math.exp(0.5))
    assert best(ar) == (20, 160, 2.5)
    with pytest.raises(ValueError, match="not equal tokens"):
        gap(ar, eval_curve([{"step": 10, "eval_nll": 3.0}], tokens_per_step=4))
    with pytest.raises(ValueError, match="share no evaluation step"):
        gap(ar, eval_curve([{"step": 15, "eval_nll": 3.0}], tokens_per_step=8))
