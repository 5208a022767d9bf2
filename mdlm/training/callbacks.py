"""Trainer callbacks shared by the recipes."""

from __future__ import annotations

import time

import torch
from transformers import TrainerCallback


class TimeBudget(TrainerCallback):
    """Ends training once ``seconds`` of wall time have passed since the first step (a fixed-time GPU
    slot must still end with a saved, evaluated checkpoint; the LR schedule is not stretched).
    ``save_checkpoint``: also write a checkpoint at that step, so a later launch with ``--resume_from_checkpoint
    auto`` continues the same run (optimizer, LR schedule and data order included) where this one stopped."""

    def __init__(self, seconds: float, every: int = 10, save_checkpoint: bool = False):
        self.seconds = seconds
        self.every = every
        self.save_checkpoint = save_checkpoint
        self.t0: float | None = None

    def on_train_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self.t0 is None or state.global_step % self.every:
            return control
        stop = time.perf_counter() - self.t0 > self.seconds
        if torch.distributed.is_available() and torch.distributed.is_initialized():  # every rank stops at the same step
            flag = torch.tensor([float(stop)], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            if state.is_world_process_zero:
                print(f"time budget of {self.seconds:.0f} s reached at step {state.global_step}; stopping", flush=True)
            control.should_training_stop = True
            control.should_save = control.should_save or self.save_checkpoint
        return control
