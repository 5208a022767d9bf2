"""mdlm.training.scaling: the memory / communication / throughput arithmetic behind docs/training_at_scale.md."""

import pytest
import torch
from transformers import AutoModelForMaskedLM

import mdlm  # noqa: F401
from mdlm.modeling import MDLMConfig
from mdlm.training.scaling import (
    activation_bytes,
    comm_bytes,
    hidden_share,
    param_count,
    shape_of,
    state_bytes,
    steady_tokens_per_s,
    tokens_per_s_per_gpu,
)


@pytest.mark.parametrize("kv", [None, 2])
def test_param_count_is_the_models(kv):
    cfg = MDLMConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=176, **({"num_key_value_heads": kv} if kv else {}))
    with torch.device("meta"):
        model = AutoModelForMaskedLM.from_config(cfg)
    assert param_count(shape_of(cfg))["total"] == sum(p.numel() for p in model.parameters())


def test_zero_memory_matches_the_zero_paper_figure_1():
    # Rajbhandari et al. 2020, Fig. 1: 7.5B parameters, 64 GPUs, K = 12 → 120 / 31.4 / 16.6 / 1.9 GB per GPU
    gb = [sum(state_bytes(int(7.5e9), stage, 64).values()) / 1e9 for stage in (0, 1, 2, 3)]
    assert gb == pytest.approx([120, 31.4, 16.6, 1.875], abs=0.05)
    assert sum(state_bytes(100, None, 8).values()) == 1600  # plain AMP: 16 bytes/parameter, nothing sharded
    with pytest.raises(ValueError):
        state_bytes(100, 4, 2)


def test_activations_scale_with_the_batch_and_checkpointing_cuts_them():
    s = shape_of(MDLMConfig(vocab_size=50304, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                            intermediate_size=2816))
    full, ckpt = activation_bytes(s, 16, 1024), activation_bytes(s, 16, 1024, checkpointing=True)
    assert activation_bytes(s, 32, 1024) == pytest.approx(2 * full)
    assert ckpt < full / 3


def test_communication_and_throughput_extrapolation():
    n = 350_000_000
    assert comm_bytes(n, 2, 1) == 0 and comm_bytes(n, 3, 8) == pytest.approx(1.5 * comm_bytes(n, 2, 8))
    assert comm_bytes(n, 2, 2) == pytest.approx(2 * n)  # one bf16 all-reduce: 2·(N−1)/N·2Ψ bytes
    tps1, tok = 100_000.0, 16 * 1024
    assert tokens_per_s_per_gpu(tps1, tok, n, 2, 64, hidden=1.0) == pytest.approx(tps1)
    slow = tokens_per_s_per_gpu(tps1, tok, n, 2, 64)  # nothing hidden, across nodes at 50 GB/s
    assert slow < tokens_per_s_per_gpu(tps1, tok, n, 2, 8) < tps1
    measured = tokens_per_s_per_gpu(tps1, tok, n, 3, 2, hidden=0.4)
    assert hidden_share(tps1, measured, tok, n, 3, 2) == pytest.approx(0.4)


def test_steady_tokens_per_s_leaves_out_warmup_and_save_intervals():
    times = [[0, 0.0], [10, 30.0], [20, 31.0], [30, 40.0], [40, 41.0]]  # warm-up 30 s; a save after step 20
    tps, steps = steady_tokens_per_s(times, 100, exclude_after=(20,))
    assert steps == 20 and tps == pytest.approx(20 * 100 / 2.0)
    with pytest.raises(ValueError):
        steady_tokens_per_s(times[:2], 100)


def test_step_overhead_recovers_what_the_bandwidth_model_does_not_explain():
    from mdlm.training.scaling import step_overhead, tokens_per_s_per_gpu

    n, tok, base = 360_000_000, 32 * 1024, 120_000.0
    slow = tokens_per_s_per_gpu(base, tok, n, 3, 2, hidden=0.0, overhead_s=0.25)  # e.g. ZeRO-3's gathers
    assert step_overhead(base, slow, tok, n, 3, 2, hidden=0.0) == pytest.approx(0.25)
    assert step_overhead(base, base * 1.01, tok, n, 1, 2, hidden=1.0) == 0.0  # faster than 1 GPU: nothing left
    assert tokens_per_s_per_gpu(base, tok, n, 3, 1, overhead_s=0.25) == base  # one GPU: no communication
