"""``RunRecorder``: what a benchmarked training run writes per rank for the scaling table — the wall time at
every logging step (the Trainer's loss ``.item()`` at logging synchronises the device, so the time between two
logs is the time of those steps) and the device's peak memory (``torch.cuda.max_memory_allocated``). Used by
``eval/zero_run.py``; ``mdlm.training.scaling.steady_tokens_per_s`` turns the times into tokens/s."""

from __future__ import annotations

import json
import os
import time

import torch
from transformers import TrainerCallback


class RunRecorder(TrainerCallback):
    """Writes ``record_dir/rank{R}.json`` at every log and at the end of training: ``log_times`` [[step, seconds]], ``loss``
    [[step, loss]], ``tokens_per_step`` (per rank: micro-batch × accumulation × seq_len), ``world_size``, ``peak_allocated`` / ``peak_reserved``
    (bytes, CUDA only, else null) and the device name."""

    def __init__(self, record_dir: str, seq_len: int):
        self.dir = record_dir
        self.seq_len = int(seq_len)
        self.times: list[list[float]] = []
        self.losses: list[list[float]] = []

    def on_train_begin(self, args, state, control, **kw):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self.times = [[state.global_step, time.perf_counter()]]

    def on_log(self, args, state, control, logs=None, **kw):
        if "loss" in (logs or {}):
            self.times.append([state.global_step, time.perf_counter()])
            self.losses.append([state.global_step, float(logs["loss"])])
            self._write(args)  # a run cut short by a time limit still leaves its steps so far

    def on_train_end(self, args, state, control, **kw):
        self._write(args)

    def _write(self, args) -> None:
        cuda = torch.cuda.is_available()
        rec = {
            "rank": args.process_index, "world_size": args.world_size, "seq_len": self.seq_len,
            "tokens_per_step": args.per_device_train_batch_size * args.gradient_accumulation_steps * self.seq_len,
            "log_times": self.times, "loss": self.losses,
            "peak_allocated": torch.cuda.max_memory_allocated() if cuda else None,
            "peak_reserved": torch.cuda.max_memory_reserved() if cuda else None,
            "device": torch.cuda.get_device_name() if cuda else "cpu",
        }
        os.makedirs(self.dir, exist_ok=True)
        path = os.path.join(self.dir, f"rank{args.process_index}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(rec, f)
        os.replace(path + ".tmp", path)
