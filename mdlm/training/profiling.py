"""``ProfileCallback``: torch.profiler over a few optimizer steps of a real training run (``--profile_steps``).

Writes ``OUTPUT_DIR/profile.txt``: the top operators and kernels by device time, and the GPU busy share (sum of
kernel time ÷ wall time of the profiled steps). A share far below 100% means the host (Python, launches, host
synchronisations, data loading) leaves the GPU idle; near 100% means the kernels themselves set the speed.
"""

from __future__ import annotations

import os
import time

import torch
from transformers import TrainerCallback


def busy_share(prof, wall_s: float) -> float:
    """Σ self device time of CUDA events ÷ wall time (the profiled steps, synchronised at both ends)."""
    kernel_us = sum(e.self_device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA")
    return kernel_us / 1e6 / wall_s


class ProfileCallback(TrainerCallback):
    """Profile steps ``start+1 … start+count`` (global step numbering) on rank 0 and write the report."""

    def __init__(self, start: int, count: int, out_dir: str, rows: int = 30):
        self.start, self.count, self.out_dir, self.rows = start, count, out_dir, rows
        self._prof = None
        self._t0 = 0.0

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kw):
        if self._prof is None and state.global_step == self.start and state.is_world_process_zero:
            acts = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                acts.append(torch.profiler.ProfilerActivity.CUDA)
            self._sync()
            self._prof = torch.profiler.profile(activities=acts)
            self._prof.__enter__()
            self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self._prof is None or state.global_step < self.start + self.count:
            return
        self._sync()
        wall = time.perf_counter() - self._t0
        self._prof.__exit__(None, None, None)
        prof, self._prof, self.start = self._prof, None, -1  # once
        sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        lines = [f"profiled {self.count} optimizer steps: {wall * 1e3 / self.count:.1f} ms per step (wall)",
                 prof.key_averages().table(sort_by=sort, row_limit=self.rows, max_name_column_width=70)]
        if torch.cuda.is_available():
            lines.append(f"GPU busy share: {busy_share(prof, wall):.1%} (kernel time / wall)")
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, "profile.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        print(lines[0] + (f"; {lines[-1]}" if len(lines) > 2 else ""), flush=True)
