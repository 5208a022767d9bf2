"""The greedy decoding step alone (no model): GPU time per step of each implementation, on synthetic logits.

    python eval/bench_greedy_step.py                                   # batch 1 and 8, block 32, GPT-2's padded vocabulary
    python eval/bench_greedy_step.py --batch 8 --rules schedule --out step.json   # --overwrite to replace it
    python eval/bench_greedy_step.py --device cpu --replays 5 --vocab 2048   # a smoke run (no CUDA graphs, no kernel)

For each batch size, rule (the schedule's count, Fast-dLLM's threshold 0.9, the EB budget) and implementation —
the per-position statistics by PyTorch ops or by the Triton kernel (``mdlm/sampling/row_stats.py``), the rest of
the step eager or through ``torch.compile`` — the step (``greedy_confidence_step``) on (B, W, V) bfloat16 logits is
captured as one CUDA graph and replayed back to back: the microseconds per replay are its GPU time as the sampler's
graphed step pays it. The kernels each launches (eager, ``torch.profiler``) and whether its canvas equals the
PyTorch implementation's are listed beside. Compare the time with one forward of the model
(``eval/bench_sampler.py`` prints it): the goal of issue #17 is a sampler overhead ≤ 3% of a forward at batch 8.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from mdlm.cli import ArgumentParser, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.kernel_timing import graph_us, kernels
from mdlm.sampling.compiled import compiled_function, recompile_headroom
from mdlm.sampling.fused_step import greedy_confidence_step

RULES = {"schedule": dict(rule="schedule"), "fast_dllm 0.9": dict(rule="fast_dllm", threshold=0.9),
         "eb 0.1": dict(rule="eb", eb_gamma=0.1)}


def inputs(batch: int, width: int, vocab: int, valid: int, device: str, seed: int = 0) -> dict:
    """Synthetic step inputs: logits with a few confident positions, a canvas whose block window is all masked."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    logits = torch.randn(batch, width, vocab, generator=g) * 2.0  # (B, W, V)
    hot = torch.randint(0, valid, (batch, width), generator=g)
    logits.scatter_(-1, hot.unsqueeze(-1), 12.0 * torch.rand(batch, width, 1, generator=g))
    mask_id = valid + 1
    L = width + 16
    x = torch.randint(0, valid, (batch, L), generator=g)
    x[:, 16:] = mask_id
    gen = torch.zeros(batch, L, dtype=torch.bool)
    gen[:, 16:] = True
    return dict(logits=logits.to(device, torch.bfloat16), x=x.to(device),
                window=torch.arange(16, L, device=device), block=torch.ones(batch, width, dtype=torch.bool, device=device),
                n_after=torch.full((batch,), width - 1, device=device),
                suppress=torch.tensor([mask_id, *range(valid, vocab)], device=device), gen=gen.to(device),
                mask_id=mask_id, eos_id=None)


def step_fn(inp: dict, rule: dict, compiled: bool, backend: str):
    step = compiled_function(greedy_confidence_step) if compiled else greedy_confidence_step
    return lambda: step(inp["logits"], inp["x"], inp["window"], inp["block"], inp["n_after"], inp["suppress"],
                        inp["gen"], inp["mask_id"], inp["eos_id"], **rule, row_stats=backend)


def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=positive_int, nargs="+", default=[1, 8], help="rows (B)")
    p.add_argument("--width", type=positive_int, default=32, help="block window width (W)")
    p.add_argument("--vocab", type=positive_int, default=50304, help="logits per position (V, the padded head)")
    p.add_argument("--valid", type=positive_int, default=None, help="the tokenizer's ids (V − valid padded ids are "
                   "suppressed; default: V − 47, GPT-2's 50,257 in 50,304)")
    p.add_argument("--rules", nargs="+", choices=list(RULES), default=list(RULES))
    p.add_argument("--replays", type=positive_int, default=200, help="timed replays per run")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    cuda = a.device.startswith("cuda")
    valid = a.valid if a.valid is not None else a.vocab - 47
    if not 2 <= valid < a.vocab - 1:
        p.error(f"--valid must leave room for a mask id: 2 ≤ valid < vocab − 1 = {a.vocab - 1}")
    backends = ["torch", "triton"] if cuda else ["torch"]
    rows = []
    timing = "µs per step (CUDA graph)" if cuda else "µs per call (CPU, no graph)"
    print(f"| batch | rule | row stats | rest of the step | {timing} | kernels (eager) | canvas = "
          "torch eager |\n|---|---|---|---|---|---|---|", flush=True)
    with torch.inference_mode(), recompile_headroom():
        for B in a.batch:
            inp = inputs(B, a.width, a.vocab, valid, a.device)
            for rule_name in a.rules:
                ref = None
                for compiled in [False] + ([] if a.no_compile else [True]):
                    for backend in backends:
                        fn = step_fn(inp, RULES[rule_name], compiled, backend)
                        new = fn()[0]
                        ref = new if ref is None else ref
                        us = graph_us(fn, a.replays, cuda)
                        n_k = kernels(fn, cuda)
                        row = dict(batch=B, rule=rule_name, row_stats=backend, compiled=compiled,
                                   us_per_step=round(us, 2), kernels=n_k, same_canvas=bool(torch.equal(new, ref)))
                        rows.append(row)
                        print(f"| {B} | {rule_name} | {backend} | {'compiled' if compiled else 'eager'} | "
                              f"{us:.1f} µs | {n_k if n_k is not None else 'n/a'} | {row['same_canvas']} |", flush=True)
    if a.out:
        meta = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
                "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"), "width": a.width, "vocab": a.vocab}
        with open(a.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    run_cli(main)()
