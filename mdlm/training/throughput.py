"""Training throughput and model FLOPs utilisation (MFU).

Model FLOPs per trained token (forward + backward = 3 × forward), counting what the MDM step
actually computes:
    6 · N_blocks                       (all linear layers of the transformer blocks)
  + 12 · n_layers · seq_len · d_attn   (QKᵀ and AV, full bidirectional attention)
  + 6 · d · V · masked_share           (LM head, applied only at masked positions)
N_blocks excludes the embedding table (a lookup). ``masked_share`` is E[γ(t)] over the training
times (≈ 0.5 for the linear schedule on [t_min, 1]). MFU = achieved FLOP/s ÷ peak FLOP/s, the peak measured on
the GPU of the run at its start (:func:`mdlm.training.peak.measure_bf16_peak`) unless ``--peak_tflops`` gives it
(787 TFLOP/s, the H100 of DESIGN.md, off CUDA).

What a real run reports (:class:`ThroughputCallback`): tokens/s and MFU per logging interval, the first interval
(compilation, warm-up) flagged, and intervals that contain an evaluation or a checkpoint save restarted after it, so
the figures are training steps with data loading and logging, evaluation excluded; at the end, one summary line over
the steady intervals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers import TrainerCallback

H100_BF16_PEAK = 787e12


@dataclass
class ThroughputArguments:
    """How the recipe measures its own speed."""

    peak_tflops: float | None = field(
        default=None, metadata={"help": "bf16 peak for MFU, TFLOP/s; default: measured on this GPU at the start "
                                         "(mdlm/training/peak.py), 787 (H100) off CUDA"})
    profile_steps: str | None = field(
        default=None, metadata={"help": "START:COUNT — profile COUNT optimizer steps from step START with "
                                         "torch.profiler; the table and GPU busy share go to OUTPUT_DIR/profile.txt"})

    def __post_init__(self) -> None:
        if self.peak_tflops is not None and not self.peak_tflops > 0:
            raise ValueError(f"--peak_tflops must be > 0, got {self.peak_tflops}")
        if self.profile_steps is not None:
            parts = str(self.profile_steps).split(":")
            if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[1]) < 1:
                raise ValueError(f"--profile_steps is START:COUNT (e.g. 30:5), got {self.profile_steps!r}")


def peak_flops(targs: ThroughputArguments) -> tuple[float, str]:
    """(peak FLOP/s, where it comes from) for the MFU of this run."""
    if targs.peak_tflops is not None:
        return targs.peak_tflops * 1e12, "given"
    if torch.cuda.is_available():
        from .peak import measure_bf16_peak

        return measure_bf16_peak(torch.device("cuda", torch.cuda.current_device())), "measured"
    return H100_BF16_PEAK, "H100 default"


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


def steady_intervals(log_history: list[dict]) -> list[dict]:
    """The logged throughput records of :class:`ThroughputCallback` (``tokens_per_s``, ``mfu``) that are not flagged
    warm-up — the steady intervals, evaluation excluded — in logging order, from a Trainer's ``log_history`` (across
    resumed launches it holds every launch's)."""
    return [r for r in log_history if "tokens_per_s" in r and not r.get("warmup")]


class ThroughputCallback(TrainerCallback):
    """Adds ``tokens_per_s`` and ``mfu`` to each logged record (wall time between log calls; the Trainer's loss
    ``.item()`` at logging synchronises the GPU). The first interval (compilation, warm-up) is flagged ``warmup``;
    an evaluation or a save restarts the interval after it, so neither is counted, and an interval with profiled
    steps is flagged ``profiled``. ``summary()`` averages the steady intervals (token-weighted)."""

    def __init__(self, tokens_per_step: int, flops_per_token: float, peak_flops: float = H100_BF16_PEAK,
                 profiled: tuple[int, int] | None = None):
        self.profiled = profiled  # (first, last) step under torch.profiler: its interval is not steady
        self.tokens_per_step = tokens_per_step
        self.fpt = flops_per_token
        self.peak = peak_flops
        self._t = None
        self._step = 0
        self._first = True
        self._steady = [0, 0.0]  # steps, seconds

    def on_train_begin(self, args, state, control, **kw):
        self._t, self._step = time.perf_counter(), state.global_step

    def _restart(self, state) -> None:
        self._t, self._step = time.perf_counter(), state.global_step

    def on_evaluate(self, args, state, control, **kw):
        self._restart(state)

    def on_save(self, args, state, control, **kw):
        self._restart(state)

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
        under_profiler = self.profiled is not None and self._step < self.profiled[1] and state.global_step >= self.profiled[0]
        if self._first:
            rec["warmup"] = True
            self._first = False
        elif under_profiler:
            rec["profiled"] = True
        else:
            self._steady[0] += steps
            self._steady[1] += now - self._t
        if state.is_world_process_zero:
            mfu = f", MFU {rec['mfu']:.1%}" if torch.cuda.is_available() else ""
            print(f"step {state.global_step}: {tps:,.0f} tokens/s{mfu}", flush=True)
        self._t, self._step = now, state.global_step

    def summary(self, world_size: int) -> dict[str, float]:
        """Token-weighted tokens/s and MFU over the steady intervals (empty before two logged intervals)."""
        steps, secs = self._steady
        if steps == 0:
            return {}
        tps = steps * self.tokens_per_step * world_size / secs
        return {"steady_steps": steps, "tokens_per_s": tps, "tokens_per_s_per_gpu": tps / world_size,
                "mfu": tps * self.fpt / (self.peak * world_size), "peak_tflops": self.peak / 1e12,
                "flops_per_token": self.fpt}


def throughput_callbacks(config, margs, dargs, diff, targs, obj, speed: ThroughputArguments) -> tuple:
    """The recipe's speed callbacks: (ThroughputCallback[, ProfileCallback]) for an mdlm model, else ().

    FLOPs per token by objective: MDM — :func:`flops_per_token` with the schedule's expected masked share;
    BD3 — :func:`bd3_flops_per_token`; AR — every position is scored (head share 1)."""
    if margs.model_type != "mdlm":
        return ()
    from ..schedules import get_schedule

    share = expected_masked_share(get_schedule(diff.schedule), diff.t_min)
    tokens_per_step = targs.per_device_train_batch_size * targs.gradient_accumulation_steps * dargs.seq_len
    if obj.objective == "bd3":
        fpt = bd3_flops_per_token(config, dargs.seq_len, share)
    else:
        fpt = flops_per_token(config, dargs.seq_len, 1.0 if obj.objective == "ar" else share)
    peak, source = peak_flops(speed)
    if targs.process_index == 0 and torch.cuda.is_available():
        print(f"MFU against a bf16 peak of {peak / 1e12:.0f} TFLOP/s ({source}); "
              f"{fpt / 1e9:.3f} GFLOP per trained token", flush=True)
    if not speed.profile_steps:
        return (ThroughputCallback(tokens_per_step, fpt, peak),)
    from .profiling import ProfileCallback

    start, count = (int(x) for x in speed.profile_steps.split(":"))
    return (ThroughputCallback(tokens_per_step, fpt, peak, profiled=(start + 1, start + count)),
            ProfileCallback(start, count, targs.output_dir))
