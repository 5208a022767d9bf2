"""Where the time goes: torch.profiler tables of a training step and of sampler decoding.

    python eval/profile_gpu.py decode --size 125m --batch 64 --gen-length 256 --block-length 32
    python eval/profile_gpu.py decode --size 125m --batch 1 --gen-length 512 --float32-norm   # the "before" norm
    python eval/profile_gpu.py decode --size 125m --batch 1 --gen-length 512 --compile   # + torch.compile rows
    python eval/profile_gpu.py train --size 125m --batch 32 --compile

Speed does not depend on the weights for these shapes, so the model is randomly initialised
(the ``eval/bench_train.py`` sizes, GPT-2 vocabulary). ``decode`` times, CUDA-synchronised, one full
forward (logits of every column and of the block window only), one dual-cache fill and step
(:mod:`mdlm.sampling.cached_calls`), one greedy confidence step (:mod:`mdlm.sampling.fused_step`) and
whole ``generate`` runs (uncached one token per step vs dual cache; with CUDA graphs captured once per block —
before 2026-11-30 — and once per generation, ``cuda_graph_reuse``), then prints the profiler's
kernel table for a few dual-cached steps. ``train`` profiles bench_train's MDM step. Both print the
GPU busy share (sum of kernel time / wall time): far below 100% means the host (Python, kernel
launches, synchronisations) is the bottleneck, not the GPU.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from mdlm.cli import ArgumentParser, positive_int, run_cli
from mdlm.evaluation.benchmark_models import MASK, SIZES, build
from mdlm.modeling.padding import default_position_ids
from mdlm.sampling.cached_calls import BlockCachedLogits
from mdlm.sampling import SamplerConfig, as_logits_fn, generate
from mdlm.sampling.fused_step import greedy_confidence_step
from mdlm.sampling.compiled import compiled_calls
from mdlm.sampling.graphs import capture


def timeit(fn: Callable[[], object], n: int, cuda: bool) -> float:
    """Median-free mean wall time (ms) of ``n`` calls after one warm-up, synchronised at both ends."""
    fn()
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - t) / n


def table(prof, wall_ms: float, rows: int) -> None:
    """Top kernels by device time and the GPU busy share."""
    key = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60))
    if torch.cuda.is_available():
        busy = sum(e.self_device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA") / 1000
        print(f"GPU kernel time {busy:.1f} ms of {wall_ms:.1f} ms wall ({busy / wall_ms:.0%} busy)")


def ragged_canvas(batch: int, gen: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompts of 10…17 tokens and ``gen`` masks per row: (B, L) ids and attention mask."""
    g = torch.Generator().manual_seed(0)
    P = 17
    lens = 10 + torch.arange(batch) % 8  # (B,)
    x = torch.randint(0, 50000, (batch, P + gen), generator=g)
    am = torch.ones(batch, P + gen, dtype=torch.long)
    col = torch.arange(P)
    pad = col[None, :] < (P - lens)[:, None]  # (B, P)
    x[:, :P][pad] = 50257
    am[:, :P][pad] = 0
    x[:, P:] = MASK
    return x.to(device), am.to(device)


def float32_norm() -> None:
    """Every RMSNorm as before 2026-11-30 (upcast input and weight to float32, cast back: three extra kernels per
    norm in bf16), for a before/after profile on the same machine."""
    from mdlm.modeling.modeling import RMSNorm, float32_rms_norm

    RMSNorm.forward = lambda self, x: float32_rms_norm(x, self.weight, self.eps)


def decode(a) -> None:
    cuda = a.device.startswith("cuda")
    if a.float32_norm:
        float32_norm()
    model = build("mdlm", a.size, 2048).to(a.device, torch.bfloat16).eval()
    x, am = ragged_canvas(a.batch, a.gen_length, a.device)
    B, L = x.shape
    lo, hi = L - a.gen_length, L - a.gen_length + a.block_length
    pos = default_position_ids(am, am)
    window = torch.zeros(B, L, dtype=torch.bool, device=a.device)
    window[:, lo:hi] = True
    print(f"decode | {a.size} | batch {B} x {L} columns | block {a.block_length} | {torch.cuda.get_device_name() if cuda else 'cpu'}")
    with torch.no_grad():
        full = timeit(lambda: model(input_ids=x, attention_mask=am, position_ids=pos), a.n, cuda)
        win = timeit(lambda: model(input_ids=x, attention_mask=am, position_ids=pos, logits_positions=window), a.n, cuda)
        runner = BlockCachedLogits(model, "dual", am)
        fill = timeit(lambda: runner.fill(x, lo, hi), a.n, cuda)
        step = timeit(lambda: runner.step(x, lo, hi), a.n, cuda)
        logits = runner.step(x, lo, hi)  # (B, W, V)
        blk = torch.ones(B, hi - lo, dtype=torch.bool, device=a.device)
        cols = torch.arange(lo, hi, device=a.device)
        gen = torch.zeros(B, L, dtype=torch.bool, device=a.device)
        gen[:, lo:] = True
        n_after = torch.full((B,), hi - lo - 1, device=a.device)
        sup = torch.tensor([MASK], device=a.device)
        greedy = timeit(lambda: greedy_confidence_step(logits, x, cols, blk, n_after, sup, gen, MASK, None), a.n, cuda)
        replayed = None
        if cuda:  # the floor of a graphed dual step: its kernels replayed back to back (no host time between)
            body = lambda: greedy_confidence_step(runner.step(x, lo, hi), x, cols, blk, n_after, sup, gen, MASK, None)  # noqa: E731
            graph = capture(body)
            replayed = timeit(graph.replay, a.n, cuda) if graph is not None else None
    print(f"full forward (all logits)  {full:8.2f} ms\nfull forward (window head) {win:8.2f} ms\n"
          f"dual fill                  {fill:8.2f} ms\ndual step (block only)     {step:8.2f} ms\n"
          f"greedy confidence step     {greedy:8.2f} ms")
    if replayed is not None:
        print(f"dual step + greedy step as one graph replay {replayed:8.2f} ms (the GPU time of a graphed step)")
    reference = as_logits_fn(model)  # LLaDA's loop: logits of every column, no cache, no graphs
    for name, m, cache, graphs, reuse in (
            ("llada", reference, "none", False, True), ("uncached", model, "none", False, True),
            ("graphs (one capture per block)", model, "none", True, False), ("graphs", model, "none", True, True),
            ("dual", model, "dual", False, True), ("dual+graphs (one capture per block)", model, "dual", True, False),
            ("dual+graphs", model, "dual", True, True), ("graphs+compile", model, "none", True, True),
            ("dual+graphs+compile", model, "dual", True, True)):
        compiled = name.endswith("+compile")
        if (graphs and not cuda) or (compiled and not a.compile):
            continue
        cfg = SamplerConfig(steps=a.gen_length, block_length=a.block_length, schedule="even", temperature=0.0,
                            remasking="low_confidence", stop_at_eos=False, cache=cache, cuda_graphs=graphs,
                            cuda_graph_reuse=reuse, torch_compile=compiled)
        run = lambda: generate(m, x, mask_id=MASK, config=cfg, attention_mask=am)  # noqa: E731
        with torch.no_grad():
            if compiled:  # the first call compiles
                t = time.perf_counter()
                run()
                print(f"generate {name}: first call (compilation) {time.perf_counter() - t:.1f} s")
            ms = timeit(run, 1, cuda)
            out = run()
        print(f"generate {name}: {ms:.0f} ms, NFE {out.nfe}, graph replays {out.graph_replays}, "
              f"{ms / out.nfe:.2f} ms per step, {B * a.gen_length / ms * 1000:,.0f} tokens/s")
        if name in ("graphs", "graphs+compile"):  # is a replayed step GPU-bound? (kernel time / wall time of the
            # whole generation; not for dual+graphs: its capture under the profiler failed on the H200, 2026-11-30)
            with torch.no_grad(), profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                t = time.perf_counter()
                run()
                torch.cuda.synchronize()
                wall = 1000 * (time.perf_counter() - t)
            busy = sum(e.self_device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA") / 1000
            print(f"  under the profiler: GPU kernel time {busy:.1f} ms of {wall:.1f} ms wall ({busy / wall:.0%} busy), "
                  f"{busy / out.nfe:.2f} ms of kernels per step")
    dual_steps_table(a, model, runner, x, lo, hi, (cols, blk, n_after, sup, gen), cuda, compiled=False)
    if a.compile:
        dual_steps_table(a, model, runner, x, lo, hi, (cols, blk, n_after, sup, gen), cuda, compiled=True)


def dual_steps_table(a, model, runner: BlockCachedLogits, x, lo: int, hi: int, step_args: tuple, cuda: bool,
                     compiled: bool) -> None:
    """The profiler's kernel table of 5 dual-cached steps (block forward + greedy step); ``compiled``: the forward
    through torch.compile (its first calls, the compilation, run before the profiler starts)."""
    cols, blk, n_after, sup, gen = step_args
    with torch.no_grad(), compiled_calls(model, compiled):
        runner.fill(x, lo, hi)
        for _ in range(3 if compiled else 0):
            runner.step(x, lo, hi)
        if cuda:
            torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            t = time.perf_counter()
            for _ in range(5):
                lg = runner.step(x, lo, hi)
                greedy_confidence_step(lg, x, cols, blk, n_after, sup, gen, MASK, None)[2].tolist()
            if cuda:
                torch.cuda.synchronize()
            wall = 1000 * (time.perf_counter() - t)
    what = ", the forward through torch.compile" if compiled else ""
    print(f"\n5 dual-cached steps{what} (block forward + greedy step):")
    table(prof, wall, a.rows)


def train(a) -> None:
    from mdlm.loss import diffusion_loss
    from mdlm.masking import mask_tokens, sample_times
    from mdlm.schedules import get_schedule
    from mdlm.training.trainer import masked_logits

    dev = torch.device(a.device)
    model = build("mdlm", a.size, a.seq_len).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=dev.type == "cuda")
    fwd = torch.compile(model) if a.compile else model
    sched, g = get_schedule("linear"), torch.Generator(device=dev).manual_seed(0)
    data = torch.randint(0, 50000, (a.batch, a.seq_len), device=dev, generator=g)

    def step() -> None:
        t = sample_times(a.batch, t_min=1e-3, device=dev, generator=g)
        noisy, masked = mask_tokens(data, t, sched, MASK, generator=g)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            logits = masked_logits(fwd, noisy, None, masked)
        diffusion_loss(logits, data, masked, t, sched, eligible=torch.ones_like(masked), mask_id=MASK).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    ms = timeit(step, 3, dev.type == "cuda")
    print(f"train | {a.size} | batch {a.batch} x {a.seq_len} | compile {a.compile} | {ms:.1f} ms per step")
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])) as prof:
        t = time.perf_counter()
        for _ in range(3):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        wall = 1000 * (time.perf_counter() - t)
    table(prof, wall, a.rows)


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["decode", "train"], help="profile sampler decoding or a training step")
    p.add_argument("--size", choices=list(SIZES), default="125m", help="model size (random weights)")
    p.add_argument("--batch", type=positive_int, default=64, help="rows (decode: left-padded prompts)")
    p.add_argument("--gen-length", type=positive_int, default=256, help="decode: generated tokens per row")
    p.add_argument("--block-length", type=positive_int, default=32, help="decode: block width")
    p.add_argument("--seq-len", type=positive_int, default=1024, help="train: tokens per row")
    p.add_argument("--compile", action="store_true", help="train: torch.compile the model; decode: also the "
                   "torch_compile generate rows and the compiled steps' kernel table")
    p.add_argument("--float32-norm", action="store_true",
                   help="decode: profile with the RMSNorm of before 2026-11-30 (float32 upcasts) for a before/after")
    p.add_argument("--n", type=positive_int, default=10, help="timed calls per micro-benchmark")
    p.add_argument("--rows", type=positive_int, default=25, help="rows of the profiler's kernel table")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="default: cuda if present")
    a = p.parse_args()
    if a.what == "decode" and not 0 < a.block_length < a.gen_length:
        p.error(f"--block-length must be between 1 and --gen-length - 1 (the dual cache reuses the other blocks), "
                f"got {a.block_length} with --gen-length {a.gen_length}")
    decode(a) if a.what == "decode" else train(a)
    return 0


if __name__ == "__main__":
    main()
