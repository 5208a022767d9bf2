"""torch_compile (MDLMGenerationConfig): the network's forward through torch.compile gives the samples of the eager
forward — no cache, the dual cache, a Fast-dLLM threshold, a block-diffusion model's exact cache, left padding —
leaves the caller's model as it was, refuses what it cannot do fast (a plain function, the prefix cache), and the
benchmark's ``ROW+compile`` rows. The CPU tests trace with TorchDynamo and run its graphs eagerly (backend "eager":
seconds, not the minutes TorchInductor's C++ code generation takes); the GPU test compiles with TorchInductor and
captures the fused kernels in CUDA graphs."""

from __future__ import annotations

import pytest
import torch

import mdlm.sampling.compiled as compiled
from mdlm.evaluation.decode_rows import row_overrides, select_rows
from mdlm.sampling import SamplerConfig, generate

from test_kv_cache import MASK, ragged_canvas, tiny

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def eager_backend(monkeypatch):
    monkeypatch.setitem(compiled.COMPILE_KWARGS, "backend", "eager")
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def decode(model, canvas, am, **kw):
    cfg = SamplerConfig(schedule="even", temperature=0.0, steps=canvas.shape[1] - 5, block_length=8, **kw)
    return generate(model, canvas, mask_id=MASK, attention_mask=am, config=cfg)


@pytest.mark.parametrize("extra", [{}, {"cache_implementation": "dual"}, {"threshold": 0.3}])
def test_compiled_forward_gives_the_eager_samples_and_leaves_the_model_as_it_was(eager_backend, extra):
    model = tiny(layers=2, dtype=torch.float32)
    canvas, am = ragged_canvas([3, 5], 24)  # left-padded rows, 3 blocks
    ref = decode(model, canvas, am, **extra)
    out = decode(model, canvas, am, torch_compile=True, **extra)
    assert torch.equal(out.sequences, ref.sequences)
    assert out.nfe == ref.nfe
    assert model._compiled_call_impl is None  # the caller's model calls its eager forward again
    longer, am2 = ragged_canvas([2, 6], 32)  # another canvas shape: compiled as dynamic, same samples
    assert torch.equal(decode(model, longer, am2, torch_compile=True, **extra).sequences,
                       decode(model, longer, am2, **extra).sequences)


def test_compiled_block_diffusion_decoding_gives_the_eager_samples(eager_backend):
    model = tiny(layers=2, dtype=torch.float32, block_size=8)
    canvas, am = ragged_canvas([3, 5], 24)
    cfg = dict(schedule="even", temperature=0.0, steps=24, threshold=0.3)
    ref = generate(model, canvas, mask_id=MASK, attention_mask=am, config=SamplerConfig(**cfg))
    out = generate(model, canvas, mask_id=MASK, attention_mask=am, config=SamplerConfig(torch_compile=True, **cfg))
    assert torch.equal(out.sequences, ref.sequences)


def test_torch_compile_refuses_a_plain_function_and_the_prefix_cache():
    model = tiny(layers=1, dtype=torch.float32)
    canvas, am = ragged_canvas([3], 8)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        decode(lambda x: model(input_ids=x).logits, canvas, None, torch_compile=True)
    with pytest.raises(ValueError, match="recompile the forward at every block"):
        SamplerConfig(torch_compile=True, cache_implementation="prefix", block_length=8)


def test_benchmark_rows_take_a_compile_suffix():
    plan = row_overrides(0.9, 1.0, 0.1)
    rows = select_rows(plan, ["threshold", "threshold+compile", "dual+threshold+compile@0.8"])
    assert "torch_compile" not in rows["threshold"]
    assert rows["threshold+compile"] == plan["threshold"] | {"torch_compile": True}
    assert rows["dual+threshold+compile@0.8"]["threshold"] == 0.8
    assert rows["dual+threshold+compile@0.8"]["torch_compile"] is True
    assert select_rows(plan, ["dual+threshold@0.8+compile"])["dual+threshold@0.8+compile"] == \
        rows["dual+threshold+compile@0.8"]  # the other order names the same row
    with pytest.raises(ValueError, match="ROW\\+compile"):
        select_rows(plan, ["nonsense+compile"])


@pytest.mark.gpu
@pytest.mark.parametrize("extra", [{}, {"cache_implementation": "dual"}, {"threshold": 0.3}])
def test_inductor_kernels_under_cuda_graphs_give_the_eager_samples(extra):
    torch._dynamo.reset()
    model = tiny(layers=2, dtype=torch.float32).cuda()
    canvas, am = ragged_canvas([3, 5], 48)
    canvas, am = canvas.cuda(), am.cuda()
    ref = decode(model, canvas, am, cuda_graphs=True, **extra)
    out = decode(model, canvas, am, cuda_graphs=True, torch_compile=True, **extra)
    assert out.graph_replays > 0
    assert out.graph_capture_failures == 0  # a compilation inside a capture breaks it (then decoding goes eager)
    assert torch.equal(out.sequences, ref.sequences)


@pytest.mark.parametrize("cache", ["none", "dual"])
def test_the_benchmarks_compile_warmup_compiles_every_graph_of_the_timed_runs(eager_backend, monkeypatch, cache):
    """decode_bench's ``ROW+compile`` rows compile in an untimed first call over the first blocks; the timed runs
    must not compile anything more (the dual cache's in-place refill of a later block is a graph of its own: with a
    one-block warm-up it compiled inside the first timed run)."""
    from torch._dynamo.utils import counters

    from mdlm.evaluation import decode_timing

    model = tiny()
    canvas, am = ragged_canvas([3, 5], 40)
    prompt = (am == 1) & (canvas != MASK)
    case = decode_timing.Case(canvas, am, prompt, 40, 8, MASK, [], None)
    cfg = SamplerConfig(schedule="even", temperature=0.0, steps=40, block_length=8, threshold=0.5,
                        cache_implementation=cache, torch_compile=True)
    graphs_after_warmup = []
    timed_runs = decode_timing._timed_runs

    def count_then_time(*args, **kwargs):
        graphs_after_warmup.append(counters["stats"]["unique_graphs"])
        return timed_runs(*args, **kwargs)

    monkeypatch.setattr(decode_timing, "_timed_runs", count_then_time)
    counters.clear()
    t = decode_timing.time_generate(model, case, cfg, repeats=1, max_seconds=60.0, sync=lambda: None)
    assert t.repeats == 1 and graphs_after_warmup[0] > 0
    assert counters["stats"]["unique_graphs"] == graphs_after_warmup[0]  # nothing compiled while timed
