"""Training-throughput benchmark: this project's MDM transformer vs HF ModernBERT of equal size,
the same MDM loss, the same batches. One command, one table, one JSON.

    python eval/bench_train.py --sizes 125m 350m --seq-len 1024 --out docs/benchmarks/train.json

Per configuration: AdamW (fused) + bf16 autocast, ``--warmup`` untimed steps then ``--steps`` timed
steps (CUDA-synchronised). With compile on, the model goes through ``torch.compile`` and the masked-token
cross-entropy too (``diffusion_loss(fused_ce=True)``, as the Trainer does with ``torch_compile``); the
first step checks it against the eager loss. MFU counts the FLOPs defined in ``mdlm/training/throughput.py`` against
``--peak`` (default: the bf16 peak measured on the H100, see docs/benchmarks/README.md). ModernBERT's MFU uses the same formula on its own
config (its local-attention layers do less attention work, so its MFU is an upper bound).
"""

from __future__ import annotations

import json
import sys
import time

import torch

from mdlm.loss import diffusion_loss
from mdlm.masking import mask_tokens, sample_times
from mdlm.cli import ArgumentParser, UserError, non_negative_int, positive_float, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.benchmark_models import MASK, SIZES, build
from mdlm.evaluation.files import write_json
from mdlm.schedules import get_schedule
from mdlm.training.throughput import H100_BF16_PEAK, block_params, flops_per_token
from mdlm.training.trainer import masked_logits

def run(kind: str, size: str, seq: int, batch: int, steps: int, warmup: int, compile_: bool, peak: float) -> dict:
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = build(kind, size, seq).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    fwd = torch.compile(model) if compile_ else model
    sched = get_schedule("linear")
    g = torch.Generator(device=dev).manual_seed(0)
    data = torch.randint(0, 50000, (steps + warmup, batch, seq), device=dev, generator=g)
    check = {"todo": True}

    def step(x):
        t = sample_times(batch, t_min=1e-3, device=dev, generator=g)
        noisy, masked = mask_tokens(x, t, sched, MASK, generator=g)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = masked_logits(fwd, noisy, None, masked)
        out = diffusion_loss(logits, x, masked, t, sched, eligible=torch.ones_like(masked), mask_id=MASK,
                             fused_ce=compile_)
        if compile_ and check["todo"]:  # the compiled loss must equal the eager one
            ref = diffusion_loss(logits, x, masked, t, sched, eligible=torch.ones_like(masked), mask_id=MASK).loss
            check.update(todo=False, fused_vs_eager_loss=abs(float(out.loss.detach()) - float(ref)))
            if check["fused_vs_eager_loss"] > 1e-3 * max(1.0, abs(float(ref))):
                raise RuntimeError(f"compiled loss {float(out.loss)} != eager loss {float(ref)}")
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return masked.sum()

    for i in range(warmup):
        step(data[i])
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    counts = [step(data[warmup + i]) for i in range(steps)]
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    share = float(torch.stack(counts).sum()) / (steps * batch * seq)
    tps = steps * batch * seq / dt
    fpt = flops_per_token(model.config, seq, share)
    return {
        "model": kind, "size": size, "params_M": round(n_params / 1e6, 1),
        "block_params_M": round(block_params(model.config) / 1e6, 1), "compile": compile_, "seq_len": seq,
        "batch": batch, "tokens_per_s": round(tps), "step_ms": round(1000 * dt / steps, 1),
        "mfu": round(tps * fpt / peak, 4), "peak_mem_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        **({"fused_vs_eager_loss": check["fused_vs_eager_loss"]} if "fused_vs_eager_loss" in check else {}),
    }


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", default=["125m", "350m"], choices=list(SIZES))
    p.add_argument("--models", nargs="+", default=["mdlm", "modernbert"], choices=["mdlm", "modernbert"])
    p.add_argument("--seq-len", type=positive_int, default=1024)
    p.add_argument("--batch", type=positive_int, nargs="+", default=[32, 16], help="per size, in order")
    p.add_argument("--steps", type=positive_int, default=20)
    p.add_argument("--warmup", type=non_negative_int, default=5)
    p.add_argument("--compile", choices=["on", "off", "both"], default="both")
    p.add_argument("--peak", type=positive_float, default=H100_BF16_PEAK, help="bf16 peak FLOP/s of the GPU (for MFU)")
    p.add_argument("--out", help="JSON file for the rows and the machine (refused if it exists, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    if not torch.cuda.is_available():
        raise UserError("this benchmark needs a CUDA GPU")
    modes = {"on": [True], "off": [False], "both": [False, True]}[a.compile]
    rows = []
    for size, batch in zip(a.sizes, a.batch + a.batch[-1:] * len(a.sizes)):
        for kind in a.models:
            for c in modes:
                try:
                    r = run(kind, size, a.seq_len, batch, a.steps, a.warmup, c, a.peak)
                except Exception as e:  # report, keep going (e.g. an OOM on one variant)
                    r = {"model": kind, "size": size, "compile": c, "error": f"{type(e).__name__}: {e}"[:300]}
                rows.append(r)
                print(json.dumps(r), flush=True)
                torch.cuda.empty_cache()
    print("\n| model | size | compile | tokens/s | step ms | MFU | peak GiB |\n|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['size']} | {r['compile']} | error: {r['error'][:60]} | | | |")
        else:
            print(f"| {r['model']} | {r['size']} | {r['compile']} | {r['tokens_per_s']:,} | {r['step_ms']} | "
                  f"{r['mfu']:.1%} | {r['peak_mem_GiB']} |")
    meta = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
            "transformers": __import__("transformers").__version__, "date": time.strftime("%Y-%m-%d"),
            "command": " ".join(sys.argv)}
    if a.out:
        write_json(a.out, {"meta": meta, "rows": rows})
    return 0


if __name__ == "__main__":
    main()
