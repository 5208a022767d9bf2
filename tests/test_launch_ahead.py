"""Launch-ahead decoding (mdlm/sampling/ahead.py, ``launch_ahead``): a threshold / factor / EB step with the block
advance on the device gives the synchronised loop's samples, NFE, steps and positions — left padding, blocks that
take different numbers of steps, a compiled forward — reads the state back fewer times than it steps and wastes no
forward; where it cannot apply (an EOS policy, a cache, a callback, no CUDA graphs, one block, blocks of other widths:
rows of other lengths, a narrower last block) the synchronised loop runs. GPU: the same under CUDA graphs and
torch.compile."""

from __future__ import annotations

import pytest
import torch

import mdlm.sampling.ahead as ahead
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.sampling import MDLMGenerationConfig, generate

from test_sampling import EOS, MASK, V, make_canvas, rand_prompts

pytestmark = pytest.mark.usefixtures("one_thread")

# thresholds / budgets at which this random model (max p ~0.15) commits some steps in parallel
RULES = [{"unmasking": "fast_dllm", "threshold": 0.18}, {"unmasking": "fast_dllm", "factor": 4.0},
         {"unmasking": "eb", "eb_gamma": 3.0}, {"threshold": 0.17}]


def confident_model(device: str = "cpu") -> MDLMForMaskedLM:
    """A tiny random model whose predictions are peaked enough for parallel commits (weights scaled up)."""
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=96, mask_token_id=MASK)
    model = MDLMForMaskedLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model.to(device)


def canvas_and_mask(device: str = "cpu", G: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    canvas = make_canvas(rand_prompts(3, 6), G)
    am = torch.ones_like(canvas)
    am[0, :3] = 0  # a left-padded row
    return canvas.to(device), am.to(device)


@pytest.fixture
def runs(monkeypatch):
    """Every LaunchAhead run of the test: its steps and state read-backs."""
    seen, real = [], ahead.LaunchAhead.run

    def counted(self):
        steps = real(self)
        seen.append((steps, self.reads))
        return steps

    monkeypatch.setattr(ahead.LaunchAhead, "run", counted)
    return seen


def decode(model, canvas, am, launch_ahead: bool, callback=None, eos_id=None, **kw):
    """Greedy decoding in blocks of 8; ``cuda_graphs`` (which launch-ahead needs) does nothing on a CPU."""
    steps = int((canvas == MASK).sum(1).max())
    kw = {"cuda_graphs": True, "block_length": 8} | kw
    cfg = MDLMGenerationConfig(steps=steps, schedule="even", temperature=0.0, launch_ahead=launch_ahead, **kw)
    with torch.no_grad():
        return generate(model, canvas, mask_id=MASK, config=cfg, attention_mask=am, suppress_tokens=[0],
                        callback=callback, eos_id=eos_id)


def same(a, b) -> None:
    assert torch.equal(a.sequences, b.sequences)
    assert (a.nfe, a.steps, a.positions) == (b.nfe, b.steps, b.positions)


@pytest.mark.parametrize("rule", RULES)
def test_launch_ahead_gives_the_synchronised_samples_and_wastes_no_forward(runs, rule):
    model = confident_model()
    canvas, am = canvas_and_mask()
    synced = decode(model, canvas, am, False, **rule)
    assert runs == []
    fast = decode(model, canvas, am, True, **rule)
    same(fast, synced)
    (steps, reads), = runs
    blocks = 40 // 8
    assert blocks < fast.nfe < 40  # parallel commits happened, and blocks took different numbers of steps
    assert steps == fast.steps and reads < steps  # fewer read-backs than steps
    assert not (fast.sequences == MASK).any()
    assert torch.equal(fast.sequences[0, :3], canvas[0, :3])  # padding untouched


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_with_a_compiled_forward_it_gives_the_synchronised_samples(runs, monkeypatch, backend):
    """torch_compile: the forward and the step traced by TorchDynamo (``aot_eager`` also functionalises as
    TorchInductor does; a CPU: no code generation), the block advance eager between them."""
    import mdlm.sampling.compiled as compiled

    monkeypatch.setitem(compiled.COMPILE_KWARGS, "backend", backend)
    monkeypatch.setattr(compiled, "_FUNCTIONS", {})
    torch._dynamo.reset()
    model = confident_model()
    canvas, am = canvas_and_mask()
    rule = RULES[0]
    try:
        same(decode(model, canvas, am, True, torch_compile=True, **rule), decode(model, canvas, am, False, **rule))
    finally:
        torch._dynamo.reset()
    assert len(runs) == 1


WHY_NOT = ["eos policy", "early stop", "dual cache", "callback", "schedule only", "off", "narrow last block",
           "rows of other lengths", "no cuda_graphs", "one block"]


@pytest.mark.parametrize("why", WHY_NOT)
def test_where_it_cannot_apply_the_synchronised_loop_runs(runs, why):
    model = confident_model()
    canvas, am = canvas_and_mask(G=36 if why == "narrow last block" else 40)  # 36: blocks 8, 8, 8, 8, 4
    rule, kw = dict(RULES[0]), {}
    if why == "rows of other lengths":  # row 1 generates 24 tokens: its blocks' columns are not row 0's
        canvas[1, :22], am[1, :16] = 0, 0
    if why == "eos policy":
        kw["eos_id"] = EOS  # stop_at_eos with an EOS id fills later blocks
    elif why == "early stop":
        kw.update(eos_id=EOS, stop_at_eos=False, eos_early_stop=True)
    elif why == "dual cache":
        kw["cache_implementation"] = "dual"
    elif why == "callback":
        kw["callback"] = lambda step, canvas, info: None
    elif why == "no cuda_graphs":
        kw["cuda_graphs"] = False  # on a GPU: eager steps, whose advance would be ~25 more launches a step
    elif why == "one block":
        kw["block_length"] = None  # one block saves no read-back
    elif why == "schedule only":
        rule = {}  # the count table says when a block ends: no read-back to save
    out = decode(model, canvas, am, why != "off", **rule, **kw)
    assert runs == []
    ref = decode(model, canvas, am, False, **rule, **kw)
    same(out, ref)


@pytest.mark.gpu
@pytest.mark.parametrize("compile_", [False, True])
@pytest.mark.parametrize("rule", RULES)
def test_under_cuda_graphs_and_torch_compile_it_gives_the_synchronised_samples(runs, rule, compile_):
    torch._dynamo.reset()
    model = confident_model("cuda")
    canvas, am = canvas_and_mask("cuda")
    synced = decode(model, canvas, am, False, torch_compile=compile_, **rule)  # graphed, read back every step
    fast = decode(model, canvas, am, True, torch_compile=compile_, **rule)
    assert fast.graph_replays > 0 and fast.graph_capture_failures == 0
    same(fast, synced)
    eager = decode(model, canvas, am, False, cuda_graphs=False, **rule)
    if not compile_:  # TorchInductor's kernels may round differently from the eager ones
        same(fast, eager)
    (steps, reads), = runs
    assert reads < steps
