"""Sampler speed on a checkpoint: tokens/s, NFE and the sampler's own overhead.

    python eval/bench_sampler.py --model runs/shakespeare_tiny --batch 8 --gen-length 128 --steps 64
    python eval/bench_sampler.py --model runs/shakespeare_tiny --only llada verify eb fast_dllm   # a subset
    python eval/bench_sampler.py --random-size 125m --batch 8 --gen-length 256 --steps 128 --dtype bfloat16 \
        --only graphs --row-stats torch        # a random 125M model (speed only); PyTorch statistics

The sampler's overhead over pure forwards is (T_gen − NFE · t_fwd) / T_gen: T_gen is the wall time of
``generate`` (best of ``--repeats`` after a warm-up run), t_fwd the time of one forward of the same
canvas measured as a run of back-to-back forwards (as a loop with no sampler would run them). A second
figure wraps the logits function in a timer that synchronises the GPU before and after every forward
("synced"): it charges the sampler for every host synchronisation, including those that a real run
overlaps with the GPU's work. Several strategies run on the same prompts so their speed and NFE can be
compared; one example generation of each is printed. Issue #17's rows: Fast-dLLM threshold / factor, the EB
sampler (``steps`` = the generated length, only a cap), greedy one token per step and its exact verified form
(``verify``: NFE counts forwards, "verify rows" the draft canvases they ran; the last column is the share of tokens
equal to one-token-per-step greedy — 100% unless the batched forward rounds differently from the B-row one), and
the EOS early stop. On a GPU, two more rows run the greedy LLaDA setting
with ``cuda_graphs=True`` (each step — forward on the block window, greedy step, canvas update — replayed
as one CUDA graph); their overhead is measured against back-to-back CUDA-graph replays of the forward alone; two
more add ``torch_compile`` (forward and greedy step through TorchInductor), measured against the compiled forward's
replays.

Every graphed row with a schedule's step count (not an adaptive rule's cap) is also timed at twice the steps (one
token per step at the most, same blocks): the difference of the two runs is ``(N2 − N1)`` more steps and nothing
else, so ``(ΔT − ΔNFE · t_fwd) / (ΔNFE · t_fwd)`` is the sampler's overhead per step as a share of one forward's
time, with the per-generation costs (the eager first steps, the graph captures, the block set-up) cancelled out; the
"overhead over pure forwards" column keeps them (a share of the whole call's wall time).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time


import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.cli import ArgumentParser, refuse_overwrite, run_cli  # noqa: E402
from mdlm.pipelines import load_for_generation  # noqa: E402
from mdlm.pipelines.text import build_text_canvas  # noqa: E402
from mdlm.sampling import SamplerConfig, as_logits_fn, generate, trim_at_eos  # noqa: E402
from mdlm.sampling.cached_calls import WindowLogits  # noqa: E402
from mdlm.sampling.compiled import compiled_calls  # noqa: E402
from mdlm.sampling.graphs import replay_seconds  # noqa: E402
from mdlm.sampling.row_stats import backend_for, use_backend  # noqa: E402
from mdlm.evaluation.benchmark_models import SIZES, build  # noqa: E402
from mdlm.tokenizers.text import gpt2_tokenizer  # noqa: E402

GREEDY = dict(schedule="even", temperature=0.0)
STRATEGIES = {
    "llada (even, low-conf, greedy)": dict(schedule="even", remasking="low_confidence", temperature=0.0),
    "llada, step_graph off (GPU: before)": dict(schedule="even", temperature=0.0, step_graph=False),
    "maskgit (cosine, T=0.8, choice-T=2)": dict(schedule="cosine", temperature=0.8, choice_temperature=2.0),
    "margin confidence (linear)": dict(schedule="linear", confidence="margin", temperature=0.0),
    "threshold 0.9 (parallel)": dict(schedule="even", temperature=0.0, threshold=0.9),
    "ancestral (MDLM, T=1, linear)": dict(schedule="linear", remasking="ancestral", temperature=1.0),
    "moment (α=1, hybrid 0.5)": dict(schedule="cosine", sampler="moment", choice_temperature=1.0, hybrid=0.5,
                                     temperature=1.0),
    # issue #17: adaptive parallel commits (steps = gen length: only a cap), exact verification, early EOS stop
    "fast_dllm threshold 0.9": dict(GREEDY, unmasking="fast_dllm", threshold=0.9, steps=None),
    "fast_dllm factor 1.0": dict(GREEDY, unmasking="fast_dllm", factor=1.0, steps=None),
    "eb γ=0.1": dict(GREEDY, unmasking="eb", eb_gamma=0.1, steps=None),
    "eb γ=1.0": dict(GREEDY, unmasking="eb", eb_gamma=1.0, steps=None),
    "greedy, one token per step": dict(GREEDY, steps=None),
    "verify (= one token per step), draft 8": dict(GREEDY, verify=True, verify_draft=8),
    "verify, fast_dllm 0.5 drafts": dict(GREEDY, verify=True, unmasking="fast_dllm", threshold=0.5, verify_draft=16),
    "llada + eos_early_stop": dict(schedule="even", temperature=0.0, eos_early_stop=True),
}
EXACT_REFERENCE = "greedy, one token per step"  # rows named "verify…" report the share of its tokens they match


GRAPH_BASE = "llada (even, low-conf, greedy)"
GRAPHED = {  # rows run with the model itself (LM head on the block window) and cuda_graphs=True
    "llada + CUDA graphs (EOS policy: 1 sync/step)": {"cuda_graphs": True},
    "llada + CUDA graphs (no EOS policy: no sync)": {"cuda_graphs": True, "stop_at_eos": False},
    "fast_dllm 0.9 + CUDA graphs": {"cuda_graphs": True, "unmasking": "fast_dllm", "threshold": 0.9, "steps": None},
    "eb γ=0.1 + CUDA graphs": {"cuda_graphs": True, "unmasking": "eb", "eb_gamma": 0.1, "steps": None},
    # the forward and the greedy step through torch.compile (their overhead: over the compiled forward's replays)
    "llada + CUDA graphs + torch_compile (no sync)": {"cuda_graphs": True, "stop_at_eos": False, "torch_compile": True},
    "fast_dllm 0.9 + CUDA graphs + torch_compile": {"cuda_graphs": True, "unmasking": "fast_dllm", "threshold": 0.9,
                                                    "steps": None, "torch_compile": True},
}


def sampler_config(kw: dict, steps: int, block_length: int, gen_length: int):
    """The row's config: ``steps=None`` in a row means one step per generated token (a cap for adaptive rules)."""
    kw = dict(kw)
    row_steps = kw.pop("steps", steps)
    return SamplerConfig(steps=gen_length if row_steps is None else row_steps, block_length=block_length, **kw)


def graphed_forward_seconds(model, canvas, attn, gen_length: int, block_length: int, repeats: int,
                            compiled: bool = False) -> float:
    """Seconds of one forward (logits of the first block's window) replayed back to back as a CUDA graph:
    the reference for the graphed rows' overhead (``compiled``: the forward through torch.compile)."""
    lo = canvas.shape[1] - gen_length
    fwd = WindowLogits(model, attn)
    x = canvas.clone()
    with torch.no_grad(), compiled_calls(model, compiled):
        for _ in range(3):
            fwd(x, lo, lo + block_length)
        return replay_seconds(lambda: fwd(x, lo, lo + block_length), 32, repeats)


def per_step_overhead_pct(t1: float, nfe1: int, t2: float, nfe2: int, t_fwd: float) -> float | None:
    """The sampler's time per extra step beyond one forward, as a percentage of the forward's time ``t_fwd``: from two
    runs of the same generation with ``nfe1 < nfe2`` forwards taking ``t1`` / ``t2`` seconds (their fixed costs cancel).
    None when the runs did not differ in forwards."""
    if nfe2 <= nfe1:
        return None
    extra = t2 - t1 - (nfe2 - nfe1) * t_fwd  # seconds outside the forwards, per the extra steps
    return 100.0 * extra / ((nfe2 - nfe1) * t_fwd)


class TimedFn:
    def __init__(self, fn, cuda: bool):
        self.fn, self.cuda, self.seconds = fn, cuda, 0.0

    def __call__(self, x, am=None):
        if self.cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = self.fn(x, am)
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t
        return out


def same_share(name: str, gen, seqs: dict) -> float | None:
    """For a verify row: the share of its generated tokens equal to the one-token-per-step greedy row's."""
    ref = seqs.get(EXACT_REFERENCE)
    if not name.startswith("verify") or ref is None:
        return None
    return float((gen == ref).float().mean())


def main() -> None:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="checkpoint directory")
    src.add_argument("--random-size", choices=list(SIZES), help="a randomly initialised model of this size with "
                     "GPT-2's tokenizer (speed does not depend on the weights; the samples are noise)")
    p.add_argument("--row-stats", choices=["auto", "torch", "triton"], default="auto",
                   help="the greedy step's per-position statistics: auto (the Triton kernel on a GPU), torch (PyTorch "
                        "ops, as the step computed them before the kernel) or triton (mdlm/sampling/row_stats_triton.py; "
                        "a CUDA device)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--gen-length", type=int, default=128)
    p.add_argument("--block-length", type=int, default=32)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--prompt", default="ROMEO:\n")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, choices=["bfloat16", "float32"], help="default: the checkpoint's")
    p.add_argument("--only", nargs="+", default=None, metavar="WORD",
                   help="run only the strategies whose name contains one of these words (e.g. llada verify eb)")
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    if a.row_stats == "triton" and not a.device.startswith("cuda"):
        p.error("--row-stats triton needs a CUDA --device (the kernel runs on a GPU)")

    def wanted(name: str) -> bool:
        return a.only is None or any(w.lower() in name.lower() for w in a.only)

    dtype = getattr(torch, a.dtype) if a.dtype else None
    if a.random_size:
        tok = gpt2_tokenizer()
        torch.manual_seed(0)  # the same random weights in every run (their samples are comparable across runs)
        model = build("mdlm", a.random_size, 2048).to(a.device, dtype or torch.float32).eval()
    else:
        loaded = load_for_generation(a.model, device=a.device, dtype=dtype)
        tok, model = loaded.tokenizer, loaded.model
    with use_backend(a.row_stats):
        run_rows(a, tok, model, wanted)


def run_rows(a, tok, model, wanted) -> None:
    """Every wanted row on ``model``: the table, the examples and (``--out``) the JSON."""
    canvas, attn, prompt = build_text_canvas(tok, [a.prompt] * a.batch, a.gen_length, model.config.max_position_embeddings)
    canvas, attn, prompt = canvas.to(a.device), attn.to(a.device), prompt.to(a.device)
    cuda = a.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    plain = as_logits_fn(model)
    with torch.no_grad():  # one forward of the canvas, as a run of back-to-back forwards
        for _ in range(3):
            plain(canvas, attn)
        t_fwd = float("inf")
        for _ in range(a.repeats):
            sync()
            t = time.perf_counter()
            for _ in range(16):
                plain(canvas, attn)
            sync()
            t_fwd = min(t_fwd, (time.perf_counter() - t) / 16)
    t_graph = graphed_forward_seconds(model, canvas, attn, a.gen_length, a.block_length, a.repeats) if cuda else None
    rows, seqs = [], {}
    for name, kw in STRATEGIES.items():
        if not wanted(name) and name != EXACT_REFERENCE:
            continue
        cfg = sampler_config(kw, a.steps, a.block_length, a.gen_length)

        def run(fn):
            g = torch.Generator(device=a.device).manual_seed(0)
            sync()
            t0 = time.perf_counter()
            with torch.no_grad():
                out = generate(fn, canvas, mask_id=tok.mask_token_id, config=cfg, attention_mask=attn,
                               cond_mask=prompt, eos_id=tok.eos_token_id, generator=g)
            sync()
            return time.perf_counter() - t0, out

        run(plain)  # warm-up
        total, out = min((run(plain) for _ in range(a.repeats)), key=lambda r: r[0])
        timed = TimedFn(plain, cuda)
        synced_total, _ = run(timed)
        gen = out.sequences[:, canvas.shape[1] - a.gen_length:]
        text = tok.decode(trim_at_eos(gen[:1], tok.eos_token_id)[0], skip_special_tokens=True)
        seqs[name] = gen
        rows.append({"strategy": name, "nfe": out.nfe, "seconds": round(total, 4),
                     "verify_rows": out.verify_rows, "eos_early_filled": out.eos_early_filled,
                     "step_graph_replays": out.step_graph_replays,
                     "same_tokens_as_reference": same_share(name, gen, seqs),
                     "tokens_per_s": round(a.batch * a.gen_length / total, 1),
                     "forward_ms": round(1000 * t_fwd, 3),
                     "overhead_pct": round(100 * (total - out.nfe * t_fwd) / total, 2),
                     "overhead_synced_pct": round(100 * (synced_total - timed.seconds) / synced_total, 2),
                     "example": text})
    t_graph_compiled = None
    if cuda:  # the whole step (forward on the block window + greedy step) replayed as one CUDA graph
        for name, extra in GRAPHED.items():
            if not wanted(name):
                continue
            cfg = sampler_config({**STRATEGIES[GRAPH_BASE], **extra}, a.steps, a.block_length, a.gen_length)
            if cfg.torch_compile and t_graph_compiled is None:
                t_graph_compiled = graphed_forward_seconds(model, canvas, attn, a.gen_length, a.block_length,
                                                           a.repeats, compiled=True)
            t_ref = t_graph_compiled if cfg.torch_compile else t_graph

            def run_graphed(cfg):
                sync()
                t0 = time.perf_counter()
                with torch.no_grad():
                    out = generate(model, canvas, mask_id=tok.mask_token_id, config=cfg, attention_mask=attn,
                                   cond_mask=prompt, eos_id=tok.eos_token_id)
                sync()
                return time.perf_counter() - t0, out

            def best(cfg):
                run_graphed(cfg)  # warm-up
                return min((run_graphed(cfg) for _ in range(a.repeats)), key=lambda r: r[0])

            total, out = best(cfg)
            per_step = None
            if extra.get("steps", a.steps) is not None and min(2 * a.steps, a.gen_length) > a.steps:
                total2, out2 = best(dataclasses.replace(cfg, steps=min(2 * a.steps, a.gen_length)))
                per_step = per_step_overhead_pct(total, out.nfe, total2, out2.nfe, t_ref)
            gen = out.sequences[:, canvas.shape[1] - a.gen_length:]
            text = tok.decode(trim_at_eos(gen[:1], tok.eos_token_id)[0], skip_special_tokens=True)
            rows.append({"strategy": name, "nfe": out.nfe, "graph_replays": out.graph_replays,
                         "seconds": round(total, 4), "tokens_per_s": round(a.batch * a.gen_length / total, 1),
                         "forward_ms": round(1000 * t_ref, 3),
                         "overhead_pct": round(100 * (total - out.nfe * t_ref) / total, 2),
                         "overhead_per_step_pct": None if per_step is None else round(per_step, 2),
                         "overhead_synced_pct": None, "example": text})
    print(f"\nmodel {a.model or 'random ' + a.random_size} | row stats {a.row_stats} | device {a.device} | "
          f"batch {a.batch} × {a.gen_length} tokens | steps {a.steps} | "
          f"block {a.block_length} | one forward {1000 * t_fwd:.2f} ms\n")
    print("| strategy | NFE | tokens/s | overhead over pure forwards | overhead, synced forwards | per step, % of a "
          "forward | verify rows | tokens = one-per-step greedy |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        synced = "n/a" if r["overhead_synced_pct"] is None else f"{r['overhead_synced_pct']:.1f}%"
        same = "" if r.get("same_tokens_as_reference") is None else f"{100 * r['same_tokens_as_reference']:.1f}%"
        step = "" if r.get("overhead_per_step_pct") is None else f"{r['overhead_per_step_pct']:.1f}%"
        print(f"| {r['strategy']} | {r['nfe']} | {r['tokens_per_s']:,} | {r['overhead_pct']:.1f}% | {synced} | {step} | "
              f"{r.get('verify_rows') or ''} | {same} |")
    if t_graph is not None:
        print(f"\nCUDA-graph rows: overhead over back-to-back graph replays of the forward alone "
              f"(block-window logits), {1000 * t_graph:.3f} ms each"
              + ("" if t_graph_compiled is None else f"; {1000 * t_graph_compiled:.3f} ms compiled (torch_compile rows)"))
    print()
    for r in rows:
        print(f"### {r['strategy']}\n{a.prompt}{r['example']}\n")
    if a.out:
        meta = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
                "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"), "row_stats": a.row_stats,
                "row_stats_used": backend_for(torch.empty(0, device=a.device)),
                "model": a.model or f"random {a.random_size}"}
        with open(a.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    run_cli(main)()
