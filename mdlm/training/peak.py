"""The bf16 matmul peak of the GPU at hand, measured, so MFU is stated against what this GPU really does.

MFU (PaLM, Chowdhery et al. 2022, App. B) divides the model FLOPs a run achieves by the accelerator's peak. Spec
sheets quote dense bf16 peaks (H100/H200 SXM: 989 TFLOP/s) that no kernel reaches under a power cap; we measure the
best large square bf16 matmul instead (cuBLAS, 8192³, ≈ 780–800 TFLOP/s on an H100/H200), which makes MFU a
statement about our code, not about clock rates.
"""

from __future__ import annotations

import time

import torch


def measure_bf16_peak(device: torch.device | str = "cuda", n: int = 8192, repeats: int = 30, trials: int = 5) -> float:
    """Best observed bf16 matmul throughput, FLOP/s: ``trials`` timings of ``repeats`` (n × n) @ (n × n) products
    (2·n³ FLOPs each) after a warm-up; returns the fastest trial. Raises ValueError when ``device`` is not CUDA
    (a CPU has no meaningful bf16 tensor-core peak). Takes ≈ 1–2 s on an H100/H200."""
    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError(f"the bf16 peak is measured on a CUDA device, not {device}")
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize(device)
    best = float("inf")
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 * repeats / best
