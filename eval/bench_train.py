"""Training-throughput benchmark: this project's MDM transformer vs HF ModernBERT of equal size,
the same MDM loss, the same batches. One command, one table, one JSON.

    python eval/bench_train.py --sizes 125m 350m --seq-len 1024 --out docs/benchmarks/train.json

Per configuration: AdamW (fused) + bf16 autocast, ``--warmup`` untimed steps then ``--steps`` timed
steps (CUDA-synchronised). With compile on, the model goes through ``torch.compile`` and the masked-token
cross-entropy too (``diffusion_loss(fused_ce=True)``, as the Trainer does with ``torch_compile``); the
first step checks it against the eager loss. MFU counts the FLOPs defined in ``mdlm/training/throughput.py`` against
``--peak`` (787 TFLOP/s bf16 measured on the H100). ModernBERT's MFU uses the same formula on its own
config (its local-attention layers do less attention work, so its MFU is an upper bound).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from transformers import AutoConfig, AutoModelForMaskedLM  # noqa: E402

from mdlm.loss import diffusion_loss  # noqa: E402
from mdlm.masking import mask_tokens, sample_times  # noqa: E402
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM  # noqa: E402
from mdlm.schedules import get_schedule  # noqa: E402
from mdlm.training.throughput import H100_BF16_PEAK, block_params, flops_per_token  # noqa: E402
from mdlm.training.trainer import masked_logits  # noqa: E402

SIZES = {"tiny": (64, 2, 2, 128), "125m": (768, 12, 12, 2048), "350m": (1024, 24, 16, 2816)}  # tiny: smoke tests
VOCAB, MASK = 50304, 50258


def build(kind: str, size: str, seq: int):
    d, L, H, ff = SIZES[size]
    if kind == "mdlm":
        cfg = MDLMConfig(vocab_size=VOCAB, hidden_size=d, num_hidden_layers=L, num_attention_heads=H,
                         intermediate_size=ff, max_position_embeddings=seq, mask_token_id=MASK)
        cfg._attn_implementation = "sdpa"
        return MDLMForMaskedLM(cfg)
    cfg = AutoConfig.for_model("modernbert", vocab_size=VOCAB, hidden_size=d, num_hidden_layers=L,
                               num_attention_heads=H, intermediate_size=ff, max_position_embeddings=seq,
                               pad_token_id=50257, mask_token_id=MASK)
    return AutoModelForMaskedLM.from_config(cfg, attn_implementation="sdpa")


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", default=["125m", "350m"], choices=list(SIZES))
    p.add_argument("--models", nargs="+", default=["mdlm", "modernbert"])
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 16], help="per size, in order")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", choices=["on", "off", "both"], default="both")
    p.add_argument("--peak", type=float, default=H100_BF16_PEAK)
    p.add_argument("--out")
    a = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: this benchmark needs a CUDA GPU")
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
    print(f"\n| model | size | compile | tokens/s | step ms | MFU | peak GiB |\n|---|---|---|---|---|---|---|")
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
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
