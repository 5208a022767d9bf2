"""Training throughput and model FLOPs utilisation (MFU).

Model FLOPs per trained token (forward + backward = 3 × forward), counting what the MDM step
actually computes:
    6 · N_blocks                       (all linear layers of the transformer blocks)
  + 12 · n_layers · seq_len · d_attn   (QKᵀ and AV, full bidirectional attention)
  + 6 · d · V · masked_share           (LM head, applied only at masked positions)
N_blocks excludes the embedding table (a lookup). ``masked_share`` is E[γ(t)] over the training
times (≈ 0.5 for the linear schedule on [t_min, 1]). MFU = achieved FLOP/s ÷ peak FLOP/s
(787 TFLOP/s bf16 measured on the H100 of DESIGN.md unless told otherwise).
"""

from __future__ import annotations

import time

import torch
from transformers import TrainerCallback

H100_BF16_PEAK = 787e12


def block_params(config) -> int:
    d, L = config.hidden_size, config.num_hidden_layers
    hd = getattr(config, "head_dim", None) or d // config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    attn = d * hd * config.num_attention_heads * 2 + d * hd * kv * 2
    mlp = 3 * d * config.intermediate_size
    return L * (attn + mlp)


def flops_per_token(config, seq_len: int, masked_share: float = 0.5) -> float:
    d, L = config.hidden_size, config.num_hidden_layers
    d_attn = (getattr(config, "head_dim", None) or d // config.num_attention_heads) * config.num_attention_heads
    return 6 * block_params(config) + 12 * L * seq_len * d_attn + 6 * d * config.vocab_size * masked_share


def bd3_flops_per_token(config, seq_len: int, masked_share: float = 0.5) -> float:
    """Block diffusion (BD3-LM): per data token the transformer runs two tokens ([x_t ; x_0]) whose attention
    spans 2·seq_len keys (SDPA computes the masked-out scores too); the LM head only at x_t's masked positions."""
    head = 6 * config.hidden_size * config.vocab_size * masked_share
    return 2 * flops_per_token(config, 2 * seq_len, 0.0) + head


def expected_masked_share(schedule, t_min: float, n: int = 10001) -> float:
    t = torch.linspace(t_min, 1.0, n, dtype=torch.float64)
    return float(schedule.gamma(t).mean())


class ThroughputCallback(TrainerCallback):
    """Adds ``tokens_per_s`` and ``mfu`` to each logged record (wall time between log calls; the
    Trainer's loss ``.item()`` at logging synchronises the GPU). The first interval (compilation,
    warm-up) is reported but flagged ``warmup``."""

    def __init__(self, tokens_per_step: int, flops_per_token: float, peak_flops: float = H100_BF16_PEAK):
        self.tokens_per_step = tokens_per_step
        self.fpt = flops_per_token
        self.peak = peak_flops
        self._t = None
        self._step = 0
        self._first = True

    def on_train_begin(self, args, state, control, **kw):
        self._t, self._step = time.perf_counter(), state.global_step

    def on_log(self, args, state, control, logs=None, **kw):
        if self._t is None or "loss" not in (logs or {}):
            return
        now = time.perf_counter()
        steps = state.global_step - self._step
        if steps <= 0:
            return
        tps = steps * self.tokens_per_step * args.world_size / (now - self._t)
        rec = state.log_history[-1]
        rec["tokens_per_s"] = tps
        rec["mfu"] = tps * self.fpt / (self.peak * args.world_size)
        if self._first:
            rec["warmup"] = True
            self._first = False
        if state.is_world_process_zero:
            mfu = f", MFU {rec['mfu']:.1%}" if torch.cuda.is_available() else ""
            print(f"step {state.global_step}: {tps:,.0f} tokens/s{mfu}", flush=True)
        self._t, self._step = now, state.global_step
