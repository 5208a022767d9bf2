"""CUDA-graph replay of the greedy step (SamplerConfig.cuda_graphs): the same samples, NFE and positions as
eager decoding for every cache mode, with a threshold, the EOS policy, left padding, every fixed-shape adaptive
policy (Fast-dLLM threshold / factor, EB, EOS early stop) and verified decoding (GPU tests), and no effect on the
CPU."""

from __future__ import annotations

import pytest
import torch

from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.sampling import SamplerConfig, generate

from test_sampling import EOS, MASK, V, make_canvas, rand_prompts


def tiny_model(device: str) -> MDLMForMaskedLM:
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=96, mask_token_id=MASK)
    return MDLMForMaskedLM(cfg).to(device).eval()


def canvas_and_mask(device: str, P: int = 6, G: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    canvas = make_canvas(rand_prompts(3, P), G)
    am = torch.ones_like(canvas)
    am[0, :3] = 0  # a left-padded row
    return canvas.to(device), am.to(device)


def run(model, canvas, am, graphs: bool, **kw):
    cfg = SamplerConfig(steps=48, block_length=16, schedule="even", temperature=0.0, cuda_graphs=graphs, **kw)
    with torch.no_grad():
        return generate(model, canvas, mask_id=MASK, config=cfg, attention_mask=am, eos_id=EOS,
                        suppress_tokens=[0])


def test_cuda_graphs_do_nothing_on_cpu():
    model = tiny_model("cpu")
    canvas, am = canvas_and_mask("cpu")
    a, b = run(model, canvas, am, False), run(model, canvas, am, True)
    assert torch.equal(a.sequences, b.sequences) and a.nfe == b.nfe
    assert b.graph_replays == 0


ADAPTIVE = [{"unmasking": "fast_dllm", "threshold": 0.3}, {"unmasking": "fast_dllm", "factor": 1.0},
            {"unmasking": "eb", "eb_gamma": 0.5}, {"unmasking": "eb", "eb_gamma": 0.5, "eos_early_stop": True},
            {"eos_early_stop": True, "stop_at_eos": False}]


@pytest.mark.parametrize("extra", ADAPTIVE)
def test_every_fixed_shape_policy_takes_the_graphable_step_and_graphs_do_nothing_on_cpu(extra):
    model = tiny_model("cpu")
    canvas, am = canvas_and_mask("cpu")
    assert SamplerConfig(temperature=0.0, cuda_graphs=True, **extra).uses_greedy_step
    a, b = run(model, canvas, am, False, **extra), run(model, canvas, am, True, **extra)
    assert torch.equal(a.sequences, b.sequences) and a.nfe == b.nfe and b.graph_replays == 0


@pytest.mark.gpu
@pytest.mark.parametrize("cache", ["none", "dual", "prefix"])
@pytest.mark.parametrize("extra", [{}, {"threshold": 0.2}, {"stop_at_eos": False}, *ADAPTIVE])
def test_cuda_graphs_replay_gives_the_eager_samples(cache, extra):
    model = tiny_model("cuda")
    canvas, am = canvas_and_mask("cuda")
    eager = run(model, canvas, am, False, cache=cache, **extra)
    graphed = run(model, canvas, am, True, cache=cache, **extra)
    assert graphed.graph_replays > 0
    assert torch.equal(graphed.sequences, eager.sequences)
    assert (graphed.nfe, graphed.steps, graphed.positions) == (eager.nfe, eager.steps, eager.positions)
    assert torch.equal(graphed.sequences[0, :3], canvas[0, :3])  # padding untouched
    assert not (graphed.sequences == MASK).any()


@pytest.mark.gpu
@pytest.mark.parametrize("cache", ["none", "dual"])
@pytest.mark.parametrize("extra", [{}, {"stop_at_eos": False}, *ADAPTIVE])
def test_the_step_graph_replays_the_eager_step(cache, extra):
    """step_graph (default on a GPU): the greedy step's kernels after an eager forward as one replay."""
    model = tiny_model("cuda")
    canvas, am = canvas_and_mask("cuda")
    eager = run(model, canvas, am, False, cache=cache, step_graph=False, **extra)
    stepped = run(model, canvas, am, False, cache=cache, **extra)
    assert stepped.step_graph_replays > 0 and eager.step_graph_replays == 0
    assert torch.equal(stepped.sequences, eager.sequences)
    assert (stepped.nfe, stepped.steps, stepped.positions) == (eager.nfe, eager.steps, eager.positions)


@pytest.mark.gpu
@pytest.mark.parametrize("extra", [{"unmasking": "confidence", "verify_draft": 4},
                                   {"unmasking": "fast_dllm", "threshold": 0.3}, {"unmasking": "eb", "eb_gamma": 0.5}])
def test_verified_decoding_replays_its_fixed_shape_step_as_a_graph(extra):
    """verify + cuda_graphs: each block's steps after its first replayed as one graph; the output stays greedy's
    one-token-per-step output with at most its forwards (each block: its first forward, then one per verified step
    but the last; on this random model drafts are rarely accepted), each verification running min(verify_draft, 16)
    canvases per row."""
    from mdlm.sampling import MDLMGenerationConfig

    model = tiny_model("cuda")
    canvas, am = canvas_and_mask("cuda")
    greedy = run(model, canvas, am, False)  # one token per step (steps = G)
    cfg = MDLMGenerationConfig(temperature=0.0, block_length=16, verify=True, cuda_graphs=True, **extra)
    with torch.no_grad():
        out = generate(model, canvas, mask_id=MASK, config=cfg, attention_mask=am, eos_id=EOS, suppress_tokens=[0])
    assert out.graph_replays > 0
    assert torch.equal(out.sequences, greedy.sequences)
    blocks, K = 48 // 16, extra.get("verify_draft", 8)
    assert out.nfe <= greedy.nfe  # a block: its first forward + one per verified step but the last
    assert out.verify_rows % K == 0 and K * (out.nfe - blocks) <= out.verify_rows < K * out.nfe


@pytest.mark.gpu
@pytest.mark.parametrize("cache, kinds", [("none", 1), ("dual", 2)])
def test_one_capture_per_kind_of_step_serves_every_block(cache, kinds, monkeypatch):
    """cuda_graph_reuse (default): the window is read from device tensors, so the generation captures once per kind
    of step (a later step; with the dual cache also the block's refill) instead of once per block (3 blocks here),
    and both give the eager samples."""
    import mdlm.sampling.graphs as graphs

    captures, real = [], graphs.capture
    monkeypatch.setattr(graphs, "capture", lambda body: captures.append(1) or real(body))
    model = tiny_model("cuda")
    canvas, am = canvas_and_mask("cuda")
    reused = run(model, canvas, am, True, cache=cache)
    assert len(captures) == kinds
    captures.clear()
    per_block = run(model, canvas, am, True, cache=cache, cuda_graph_reuse=False)
    assert len(captures) == 48 // 16
    eager = run(model, canvas, am, False, cache=cache)
    assert torch.equal(reused.sequences, eager.sequences) and torch.equal(per_block.sequences, eager.sequences)
    assert (reused.nfe, reused.positions) == (eager.nfe, eager.positions) == (per_block.nfe, per_block.positions)
    assert reused.graph_replays > per_block.graph_replays


@pytest.mark.gpu
@pytest.mark.parametrize("cache", ["none", "dual"])
def test_a_narrower_last_block_captures_anew_and_gives_the_eager_samples(cache):
    model = tiny_model("cuda")
    canvas, am = canvas_and_mask("cuda", G=40)  # blocks of 16, 16, 8 columns
    cfg = dict(steps=40, block_length=16, schedule="even", temperature=0.0, cache=cache, stop_at_eos=False)
    with torch.no_grad():
        eager, graphed = (generate(model, canvas, mask_id=MASK, config=SamplerConfig(cuda_graphs=g, **cfg),
                                   attention_mask=am) for g in (False, True))
    assert graphed.graph_replays > 0 and torch.equal(graphed.sequences, eager.sequences)
    assert (graphed.nfe, graphed.positions) == (eager.nfe, eager.positions)


@pytest.mark.gpu
def test_a_failed_capture_is_reported_and_decodes_eagerly_to_the_same_samples(monkeypatch):
    import mdlm.sampling.graphs as graphs

    model = tiny_model("cuda")
    canvas, am = canvas_and_mask("cuda")
    graphed = run(model, canvas, am, True)
    assert graphed.graph_capture_failures == 0 and graphed.graph_replays > 0
    monkeypatch.setattr(graphs, "capture", lambda body: None)  # what graphs.capture returns after its warning
    failed = run(model, canvas, am, True)
    assert failed.graph_capture_failures == 1 and failed.graph_replays == 0
    assert torch.equal(failed.sequences, graphed.sequences)
