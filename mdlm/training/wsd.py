"""Planning the decay of a warmup-stable-decay (WSD) run from its measured speed.

A WSD schedule (Hu et al. 2024, MiniCPM §4.1; transformers' ``warmup_stable_decay``) holds the learning rate at its
peak after warm-up and decays it only over the last ``num_decay_steps``. While the run is in its stable phase its
length can still change: a run spread over fixed-length device calls trains the stable phase on time budgets and,
in its last call, sets ``max_steps`` and ``num_decay_steps`` so that the decay ends inside that call. On resume the
Trainer builds a new scheduler from the new arguments and loads the saved state into it; torch's ``LambdaLR`` saves
only the step count, the peak rates and the lambda's ``__dict__`` — empty for transformers' ``functools.partial``
lambdas — so the resumed run follows the new length (``tests/test_wsd_plan.py``). What it does NOT follow: a changed
``learning_rate`` (the saved peak rates win), and with ``warmup_ratio`` instead of ``warmup_steps`` a changed length
also moves the warm-up.

    python -m mdlm.training.wsd runs/smollm2_wsd --seconds 430 --tokens-per-step 32768 --eval-steps 400 --eval-seconds 12
    # the run of docs/backbones.md ("The WSD run"), newest checkpoint at step 3,820:
    # → "max_steps 5420 num_decay_steps 1600 (from step 3820 at 145,454 tokens/s)"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

from .checkpoint import list_checkpoints
from .throughput import steady_intervals


@dataclass(frozen=True)
class DecayPlan:
    """``max_steps`` / ``num_decay_steps`` that end a resumed run's decay within the given seconds."""

    start_step: int
    max_steps: int
    num_decay_steps: int
    tokens_per_s: float


def measured_tokens_per_s(log_history: list[dict], last: int = 5) -> float:
    """Mean ``tokens_per_s`` of the last ``last`` steady intervals (:func:`.throughput.steady_intervals`).

    Raises ValueError when the history has none."""
    speeds = [r["tokens_per_s"] for r in steady_intervals(log_history)]
    if not speeds:
        raise ValueError("the checkpoint's log history has no tokens_per_s entries (was ThroughputCallback on?)")
    recent = speeds[-last:]
    return sum(recent) / len(recent)


def plan_decay(start_step: int, tokens_per_s: float, seconds: float, tokens_per_step: int, eval_steps: int = 0,
               eval_seconds: float = 0.0, safety: float = 0.95) -> DecayPlan:
    """The decay that fits in ``seconds`` of training after ``start_step``.

    Steps that fit: ``n = safety · seconds / (1/r + eval_seconds/eval_steps)`` with ``r = tokens_per_s /
    tokens_per_step`` steps per second, i.e. each step's time plus its share of one evaluation of ``eval_seconds``
    every ``eval_steps`` steps (``n = safety · seconds · r`` without evaluations). Raises ValueError for non-positive
    speeds, sizes or seconds, or a plan of fewer than one step."""
    if tokens_per_s <= 0 or tokens_per_step <= 0 or seconds <= 0:
        raise ValueError(f"need positive tokens_per_s, tokens_per_step and seconds, got {tokens_per_s}, "
                         f"{tokens_per_step}, {seconds}")
    if not 0 < safety <= 1:
        raise ValueError(f"safety must be in (0, 1], got {safety}")
    step_s = tokens_per_step / tokens_per_s
    if eval_steps > 0 and eval_seconds > 0:  # each step also carries its share of one evaluation
        step_s += eval_seconds / eval_steps
    n = int(safety * seconds / step_s)
    if n < 1:
        raise ValueError(f"{seconds:.0f} s at {tokens_per_s:,.0f} tokens/s is less than one step of {tokens_per_step}")
    return DecayPlan(start_step, start_step + n, n, tokens_per_s)


def latest_checkpoint(run_dir: str) -> str:
    """The newest ``checkpoint-N`` dir of ``run_dir`` (:func:`.checkpoint.list_checkpoints`) that holds a
    ``trainer_state.json``. Raises FileNotFoundError when there is none."""
    for ckpt in reversed(list_checkpoints(run_dir)):
        if os.path.isfile(os.path.join(ckpt, "trainer_state.json")):
            return ckpt
    raise FileNotFoundError(f"no checkpoint-N/trainer_state.json under {run_dir!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mdlm.training.wsd", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Prints one line: max_steps N num_decay_steps M (from step S at R tokens/s); "
                                       "pass them to the resumed launch as --max_steps N --lr_scheduler_kwargs "
                                       "'{\"num_decay_steps\": M, ...}'. Errors: one 'error:' line, exit 2.")
    p.add_argument("run_dir", help="the run's output dir (its newest checkpoint-N is read)")
    p.add_argument("--seconds", type=float, required=True, help="training seconds the decay must fit in")
    p.add_argument("--tokens-per-step", type=int, required=True, help="batch × seq_len × accumulation × GPUs")
    p.add_argument("--eval-steps", type=int, default=0, help="an evaluation every this many steps (0: none; counted "
                                                             "only with --eval-seconds)")
    p.add_argument("--eval-seconds", type=float, default=0.0, help="seconds one evaluation takes (default 0)")
    p.add_argument("--safety", type=float, default=0.95, help="share of the estimate planned (default 0.95)")
    a = p.parse_args(argv)
    try:
        path = os.path.join(latest_checkpoint(a.run_dir), "trainer_state.json")
        try:
            with open(path) as f:
                state = json.load(f)
            step, history = int(state["global_step"]), state["log_history"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a Trainer state (global_step, log_history): {e!r}") from None
        plan = plan_decay(step, measured_tokens_per_s(history), a.seconds, a.tokens_per_step, a.eval_steps,
                          a.eval_seconds, a.safety)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"max_steps {plan.max_steps} num_decay_steps {plan.num_decay_steps} "
          f"(from step {plan.start_step} at {plan.tokens_per_s:,.0f} tokens/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
