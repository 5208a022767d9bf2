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
def test_launch_ahead_gives_the_synchronised_samples_and_wastes_no_forward(rule):
    model = confident_model()
    canvas, am = canvas_and_mask()
    synced = decode(model, canvas, am, False, **rule)
    fast = decode(model, canvas, am, True, **rule)
    same(fast, synced)  # same steps and NFE: no forward wasted
    blocks = 40 // 8
    assert blocks < fast.nfe < 40  # parallel commits happened, and blocks took different numbers of steps
    assert fast.launch_ahead == "torch" and 0 < fast.ahead_reads < fast.steps  # fewer read-backs than steps (CPU)
    assert (synced.launch_ahead, synced.ahead_reads) == (None, 0)
    assert not (fast.sequences == MASK).any()
    assert torch.equal(fast.sequences[0, :3], canvas[0, :3])  # padding untouched


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_with_a_compiled_forward_it_gives_the_synchronised_samples(monkeypatch, backend):
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
        fast = decode(model, canvas, am, True, torch_compile=True, **rule)
        same(fast, decode(model, canvas, am, False, **rule))
    finally:
        torch._dynamo.reset()
    assert fast.launch_ahead is not None


WHY_NOT = ["eos policy", "early stop", "dual cache", "callback", "schedule only", "off", "narrow last block",
           "rows of other lengths", "no cuda_graphs", "one block"]


@pytest.mark.parametrize("why", WHY_NOT)
def test_where_it_cannot_apply_the_synchronised_loop_runs(why):
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
    assert (out.launch_ahead, out.ahead_reads) == (None, 0)
    ref = decode(model, canvas, am, False, **rule, **kw)
    same(out, ref)


@pytest.mark.gpu
@pytest.mark.parametrize("compile_", [False, True])
@pytest.mark.parametrize("rule", RULES)
def test_under_cuda_graphs_and_torch_compile_it_gives_the_synchronised_samples(rule, compile_):
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
    assert fast.launch_ahead is not None and fast.ahead_reads < fast.steps


# the block advance as one Triton kernel (mdlm/sampling/ahead_triton.py): on a GPU, or on a CPU under TRITON_INTERPRET=1
HAS_TRITON = __import__("importlib.util").util.find_spec("triton") is not None
KERNEL_DEVICE = "cuda" if torch.cuda.is_available() else (
    "cpu" if __import__("os").environ.get("TRITON_INTERPRET") == "1" else None)
needs_kernel = pytest.mark.skipif(not HAS_TRITON or KERNEL_DEVICE is None,
                                  reason="the Triton advance kernel: needs `pip install triton` and a CUDA GPU, or on "
                                         "a CPU `pip install triton` and TRITON_INTERPRET=1 in the environment")


def advance_case(device: str, B: int, NB: int = 3, W: int = 4, S: int = 4, seed: int = 0):
    """Random tables of NB blocks (W columns, S steps, batch B) and fresh buffers (filled with −1 / False)."""
    g = torch.Generator().manual_seed(seed)
    cols = torch.randint(0, 100, (NB, W), generator=g)
    flat = torch.randint(0, 1000, (NB, B * W), generator=g)
    blk = torch.rand(NB, B, W, generator=g) > 0.3
    counts = torch.randint(0, 9, (NB, S + 1, B), generator=g)
    tables = [t.to(device) for t in (cols, flat, blk, counts)]
    bufs = ((torch.full((W,), -1, device=device), torch.full((W,), -1, device=device)),
            torch.full((B * W,), -1, device=device), torch.zeros(B, W, dtype=torch.bool, device=device),
            torch.full((B,), -1, device=device))
    return tables, bufs


@needs_kernel
@pytest.mark.parametrize("B, W", [(1, 4), (3, 4), (260, 300)])  # 260 rows, 300 columns: every copy loop of the
def test_the_triton_advance_writes_what_the_pytorch_advance_writes(B, W):  # kernel runs more than one chunk of 256
    from mdlm.sampling.ahead_triton import advance_triton

    dev, NB, S = KERNEL_DEVICE, 3, 4
    for block in range(NB):
        for i in range(S):
            for left in (0, 2):  # the block filled (next block, step 0) or not (next step)
                want_t, want_b = advance_case(dev, B, W=W)
                got_t, got_b = advance_case(dev, B, W=W)
                states = [torch.tensor([block, i], device=dev) for _ in range(2)]
                flags = torch.tensor([1, left, 0], device=dev)
                ahead.advance_buffers(states[0], flags[1], *want_t, *want_b)
                advance_triton(states[1], flags[1], *got_t, *got_b)
                assert torch.equal(states[0], states[1]), (block, i, left)
                for w, g in zip([*want_b[0], *want_b[1:]], [*got_b[0], *got_b[1:]]):
                    assert torch.equal(w, g), (block, i, left)
                if left == 0 and block == NB - 1:  # finished: the last block's buffers, block index NB
                    assert int(states[1][0]) == NB


@needs_kernel
@pytest.mark.filterwarnings("error::RuntimeWarning")  # a fallback to the PyTorch advance would fail the test
def test_launch_ahead_through_the_triton_advance_gives_the_synchronised_samples(monkeypatch):
    monkeypatch.setenv("MDLM_AHEAD_ADVANCE", "triton")
    model = confident_model(KERNEL_DEVICE)
    canvas, am = canvas_and_mask(KERNEL_DEVICE)
    for rule in RULES[:2]:
        fast = decode(model, canvas, am, True, **rule)
        same(fast, decode(model, canvas, am, False, **rule))
        assert fast.launch_ahead == "triton"


def test_the_advance_backend_is_chosen_by_device_and_refused_where_it_cannot_run(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delenv("MDLM_AHEAD_ADVANCE", raising=False)
    assert ahead.advance_backend(torch.device("cpu")) == "torch"  # auto: the kernel only on CUDA
    monkeypatch.setattr(ahead, "KERNEL", {"ok": False, "failed": RuntimeError("no driver")})
    assert ahead.advance_backend(torch.device("cuda")) == "torch"  # its first launch failed in this process
    monkeypatch.setattr(ahead, "KERNEL", {"ok": False, "failed": None})
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert ahead.advance_backend(torch.device("cuda")) == "torch"  # the interpreter's host copies defeat graphs
    monkeypatch.delenv("TRITON_INTERPRET")
    monkeypatch.setenv("MDLM_AHEAD_ADVANCE", "torch")
    assert ahead.advance_backend(torch.device("cpu")) == "torch"
    monkeypatch.setenv("MDLM_AHEAD_ADVANCE", "fast")
    with pytest.raises(ValueError, match="MDLM_AHEAD_ADVANCE='fast'"):
        ahead.advance_backend(torch.device("cpu"))
    monkeypatch.setenv("MDLM_AHEAD_ADVANCE", "triton")
    with pytest.raises(RuntimeError, match="needs a CUDA device .or a CPU with TRITON_INTERPRET=1."):
        ahead.advance_backend(torch.device("cpu"))


def test_a_failing_kernel_warns_once_per_process_and_the_pytorch_advance_takes_over(monkeypatch):
    monkeypatch.setattr(ahead, "KERNEL", {"ok": False, "failed": None})
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("no driver")

    (want_t, want_b), (got_t, got_b) = advance_case("cpu", 2), advance_case("cpu", 2)
    s_want, s_got, flags = torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([1, 0, 0])
    ahead.advance_buffers(s_want, flags[1], *want_t, *want_b)
    with pytest.warns(RuntimeWarning, match="failed at its first launch"):
        assert ahead.advance_with_fallback(broken, s_got, flags[1], *got_t, *got_b) == "torch"
    assert torch.equal(s_want, s_got) and torch.equal(want_b[2], got_b[2]) and torch.equal(want_b[3], got_b[3])
    # a later generation (another LaunchAhead) neither tries the kernel again nor warns again
    assert ahead.advance_with_fallback(broken, s_got, flags[1], *got_t, *got_b) == "torch"
    assert len(calls) == 1


@pytest.mark.parametrize("worked_before", [True, False])
def test_input_errors_and_a_kernel_that_worked_before_raise_instead_of_falling_back(monkeypatch, worked_before):
    """A launcher's input check (ValueError) is no machine problem: it raises even at the first launch, and the
    kernel is not given up for the process; a kernel that worked before and fails now raises too."""
    monkeypatch.setattr(ahead, "KERNEL", {"ok": worked_before, "failed": None})

    def bad_inputs(*args):
        raise ValueError("shapes do not agree")

    def broken(*args):
        raise RuntimeError("launch failed")

    tables, bufs = advance_case("cpu", 2)
    args = (torch.tensor([0, 0]), torch.tensor(1), *tables, *bufs)
    with pytest.raises(ValueError, match="shapes do not agree"):
        ahead.advance_with_fallback(bad_inputs, *args)
    assert ahead.KERNEL["failed"] is None
    if worked_before:
        with pytest.raises(RuntimeError, match="launch failed"):
            ahead.advance_with_fallback(broken, *args)


@needs_kernel
def test_the_triton_advance_refuses_tables_and_buffers_that_do_not_agree():
    from mdlm.sampling.ahead_triton import advance_triton

    tables, (cols, flat, blk, n_after) = advance_case(KERNEL_DEVICE, 2)
    state, left = torch.tensor([0, 0], device=KERNEL_DEVICE), torch.tensor(1, device=KERNEL_DEVICE)
    with pytest.raises(ValueError, match="shapes do not agree"):
        advance_triton(state, left, *tables, cols, flat[:-1], blk, n_after)  # one flat index short: out of bounds
    with pytest.raises(ValueError, match="two column buffers"):
        advance_triton(state, left, *tables, cols[:1], flat, blk, n_after)


@pytest.mark.gpu
@pytest.mark.filterwarnings("error::RuntimeWarning")  # a fallback to the PyTorch advance would fail the test
def test_on_a_gpu_the_triton_advance_runs_by_default(monkeypatch):
    monkeypatch.delenv("MDLM_AHEAD_ADVANCE", raising=False)
    model = confident_model("cuda")
    canvas, am = canvas_and_mask("cuda")
    fast = decode(model, canvas, am, True, **RULES[0])
    same(fast, decode(model, canvas, am, False, **RULES[0]))
    assert fast.launch_ahead == ("triton" if HAS_TRITON else "torch") and fast.graph_replays > 0
