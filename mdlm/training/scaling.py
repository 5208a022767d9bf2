"""What a model needs per GPU under data parallelism with DeepSpeed ZeRO, and how its throughput extrapolates.

Pure functions of the model shape; every figure is an estimate with its assumption in the docstring.

Memory (bytes per GPU), mixed precision with Adam, Ψ parameters, N GPUs (Rajbhandari et al. 2020, "ZeRO",
§5 and Fig. 1: 2Ψ + 2Ψ + KΨ with K = 12):
  plain (torch AMP): fp32 weights 4Ψ, fp32 grads 4Ψ, Adam m, v 8Ψ — nothing sharded (16Ψ).
  ZeRO stage 0-3 (bf16): 16-bit weights 2Ψ, 16-bit grads 2Ψ, fp32 master + m + v 12Ψ; stage ≥ 1 shards the
  12Ψ, ≥ 2 also the grads, 3 also the weights, each over N.
Activations of one micro-batch (b sequences of s tokens) in bf16, per transformer block, counting the tensors
the backward pass keeps for a LLaMA-style block with SDPA/flash attention (no s² scores kept; Korthikanti et
al. 2022, "Reducing Activation Recomputation", §4.1 derive 34·sbh for a GPT block, ours differs by the SwiGLU
MLP): 18·sbh + 8·sb·I bytes. With full activation checkpointing only each block's input (2·sbh) is kept plus
one block recomputed at a time. The LM head (applied at the masked share of positions) keeps bf16 logits and
fp32 log-probabilities: 6·share·sb·V bytes.
Communication per step per GPU (ring collectives, bf16 gradients/weights): ZeRO-1/2 reduce-scatter the
gradients and all-gather the updated weights = 2·(N−1)/N·2Ψ bytes (the volume of one all-reduce); ZeRO-3
all-gathers the weights twice (forward and backward) and reduce-scatters the gradients = 3·(N−1)/N·2Ψ.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

GIB = 1024**3


@dataclass(frozen=True)
class Shape:
    """The transformer's shape: hidden size d, blocks L, heads, key/value heads, MLP width I, vocabulary V."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool = True


def shape_of(config) -> Shape:
    """The :class:`Shape` of an ``MDLMConfig`` (or any LLaMA-like transformers config)."""
    heads = config.num_attention_heads
    return Shape(config.hidden_size, config.num_hidden_layers, heads,
                 getattr(config, "num_key_value_heads", None) or heads, config.intermediate_size, config.vocab_size,
                 bool(getattr(config, "tie_word_embeddings", True)))


def param_count(s: Shape) -> dict[str, int]:
    """Parameters: ``embedding`` (V·d, once if tied), ``blocks`` (attention + SwiGLU MLP + 2 RMSNorms per block,
    final norm) and ``total``."""
    hd = s.hidden // s.heads
    attn = s.hidden * hd * (2 * s.heads + 2 * s.kv_heads)
    block = attn + 3 * s.hidden * s.intermediate + 2 * s.hidden
    emb = s.vocab * s.hidden * (1 if s.tied else 2)
    blocks = s.layers * block + s.hidden
    return {"embedding": emb, "blocks": blocks, "total": emb + blocks}


def state_bytes(n_params: int, stage: int | None, n_gpus: int) -> dict[str, float]:
    """Weights, gradients and optimizer state per GPU (bytes). ``stage`` None = plain torch AMP (fp32 weights,
    unsharded); 0-3 = DeepSpeed ZeRO stage with bf16 weights (module docstring)."""
    if stage is None:
        return {"params": 4.0 * n_params, "grads": 4.0 * n_params, "optimizer": 8.0 * n_params}
    if stage not in (0, 1, 2, 3) or n_gpus < 1:
        raise ValueError(f"stage must be None or 0-3 and n_gpus ≥ 1, got {stage}, {n_gpus}")
    shard = lambda x, k: x / n_gpus if stage >= k else x
    return {"params": shard(2.0 * n_params, 3), "grads": shard(2.0 * n_params, 2),
            "optimizer": shard(12.0 * n_params, 1)}


def activation_bytes(s: Shape, micro_batch: int, seq_len: int, checkpointing: bool = False,
                     masked_share: float = 0.5) -> float:
    """Activations kept for the backward pass of one micro-batch (bytes; module docstring for the terms)."""
    tokens = micro_batch * seq_len
    per_block = tokens * (18 * s.hidden + 8 * s.intermediate)
    blocks = s.layers * 2 * tokens * s.hidden + per_block if checkpointing else s.layers * per_block
    head = 6.0 * masked_share * tokens * s.vocab
    return float(blocks + head)


def comm_bytes(n_params: int, stage: int, n_gpus: int) -> float:
    """Bytes each GPU sends per optimizer step (ring collectives; module docstring)."""
    if n_gpus <= 1:
        return 0.0
    passes = 3 if stage == 3 else 2
    return passes * (n_gpus - 1) / n_gpus * 2.0 * n_params


def bus_bandwidth(n_gpus: int, gpus_per_node: int = 8, nvlink_gbs: float = 360.0, ib_gbits: float = 400.0) -> float:
    """The bandwidth (bytes/s per GPU) that limits a ring collective over ``n_gpus``: NVLink inside one node
    (``nvlink_gbs`` GB/s, what NCCL's all-reduce bus bandwidth reaches on H100/H200 NVLink 4), else the
    inter-node link (``ib_gbits`` Gb/s per GPU, one 400 Gb/s InfiniBand NIC per GPU)."""
    return nvlink_gbs * 1e9 if n_gpus <= gpus_per_node else ib_gbits / 8 * 1e9


def tokens_per_s_per_gpu(tps_1gpu: float, tokens_per_gpu_step: int, n_params: int, stage: int, n_gpus: int,
                         hidden: float = 0.0, overhead_s: float = 0.0, **bandwidth) -> float:
    """Extrapolated tokens/s per GPU: each step takes the 1-GPU compute time plus the part of the
    communication that is not hidden behind the backward pass (``hidden`` ∈ [0, 1], e.g. calibrated from a
    measured 2-GPU run with :func:`hidden_share`) plus a per-step overhead the bandwidth model does not explain
    (``overhead_s``, :func:`step_overhead`: e.g. ZeRO-3's per-layer parameter gathers); weak scaling (the same
    micro-batch per GPU)."""
    if n_gpus <= 1:
        return tps_1gpu
    compute = tokens_per_gpu_step / tps_1gpu
    comm = comm_bytes(n_params, stage, n_gpus) / bus_bandwidth(n_gpus, **bandwidth)
    return tokens_per_gpu_step / (compute + (1.0 - hidden) * comm + overhead_s)


def step_overhead(tps_1gpu: float, tps_ngpu: float, tokens_per_gpu_step: int, n_params: int, stage: int,
                  n_gpus: int, hidden: float, **bandwidth) -> float:
    """Seconds per step of a measured multi-GPU run that neither the 1-GPU compute nor the exposed share of the
    bandwidth-model communication explains (≥ 0): latency, hooks, small collectives. The extrapolation carries it
    to every larger GPU count unchanged (an optimistic assumption: latency terms grow with the ring size)."""
    comm = comm_bytes(n_params, stage, n_gpus) / bus_bandwidth(n_gpus, **bandwidth)
    exposed = tokens_per_gpu_step / tps_ngpu - tokens_per_gpu_step / tps_1gpu
    return max(0.0, exposed - (1.0 - hidden) * comm)


def hidden_share(tps_1gpu: float, tps_ngpu: float, tokens_per_gpu_step: int, n_params: int, stage: int,
                 n_gpus: int, **bandwidth) -> float:
    """The share of the communication hidden behind compute that explains a measured per-GPU throughput on
    ``n_gpus`` (clipped to [0, 1]): the inverse of :func:`tokens_per_s_per_gpu`."""
    comm = comm_bytes(n_params, stage, n_gpus) / bus_bandwidth(n_gpus, **bandwidth)
    if comm <= 0:
        return 1.0
    exposed = tokens_per_gpu_step / tps_ngpu - tokens_per_gpu_step / tps_1gpu
    return min(1.0, max(0.0, 1.0 - exposed / comm))


def steady_tokens_per_s(log_times: list[list[float]], tokens_per_step: int, skip: int = 1,
                        exclude_after: tuple[int, ...] = ()) -> tuple[float, int]:
    """Tokens/s per GPU over the steady logging intervals: ``log_times`` [[step, seconds], ...] starting at
    the train-begin time; the first ``skip`` intervals (compilation, warm-up) and any interval that ends after
    a step in ``exclude_after`` (a checkpoint save or evaluation ran in it) are left out. Returns
    (tokens/s, steps counted)."""
    steps, secs = 0, 0.0
    for i, ((s0, t0), (s1, t1)) in enumerate(pairwise(log_times)):
        if i < skip or any(s0 <= e < s1 for e in exclude_after):
            continue
        steps, secs = steps + int(s1 - s0), secs + (t1 - t0)
    if steps == 0 or secs <= 0:
        raise ValueError(f"no steady interval in {len(log_times) - 1} logged intervals (skip {skip})")
    return steps * tokens_per_step / secs, steps


GPU_COUNTS = (1, 2, 8, 64)


def memory_rows(s: Shape, micro_batch: int, seq_len: int, gpu_counts=GPU_COUNTS) -> list[dict]:
    """Per ZeRO stage (None = plain AMP, 1, 2, 3): {params, grads, optimizer} GiB per GPU at each GPU count,
    and the activations of one micro-batch with and without activation checkpointing (GiB; same for all N)."""
    n = param_count(s)["total"]
    act = activation_bytes(s, micro_batch, seq_len) / GIB
    act_ckpt = activation_bytes(s, micro_batch, seq_len, checkpointing=True) / GIB
    rows = []
    for stage in (None, 1, 2, 3):
        states = {g: {k: v / GIB for k, v in state_bytes(n, stage, g if stage is not None else 1).items()}
                  for g in gpu_counts}
        rows.append({"stage": stage, "states_gib": states, "activations_gib": act, "activations_ckpt_gib": act_ckpt})
    return rows


def throughput_rows(n_params: int, tokens_per_gpu_step: int, tps_1gpu: float, hidden: dict[int, float],
                    measured: dict[tuple[int, int], float], gpu_counts=GPU_COUNTS,
                    overhead: dict[int, float] | None = None) -> list[dict]:
    """Tokens/s per GPU per ZeRO stage (1-3) at each GPU count: ``measured[(stage, n)]`` where given, else
    :func:`tokens_per_s_per_gpu` from ``tps_1gpu`` with the stage's hidden communication share
    ``hidden[stage]`` and per-step overhead ``overhead[stage]`` (seconds); each cell says whether it was measured."""
    rows = []
    for stage in (1, 2, 3):
        cells = {}
        for g in gpu_counts:
            if (stage, g) in measured:
                cells[g] = (measured[(stage, g)], "measured")
            else:
                est = tokens_per_s_per_gpu(tps_1gpu, tokens_per_gpu_step, n_params, stage, g, hidden.get(stage, 0.0),
                                           (overhead or {}).get(stage, 0.0))
                cells[g] = (est, "extrapolated")
        rows.append({"stage": stage, "tokens_per_s": cells})
    return rows
