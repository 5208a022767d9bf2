"""Side-by-side samples and generative perplexity: the AR source vs adapted masked-diffusion models.

    python eval/adapt_compare.py --source DIR --gguf_file F.gguf --shift_token "<|endoftext|>" \\
        --variant lora=runs/smollm2_mdm --variant full=runs/smollm2_mdm_full --out compare.json

Rows: ``ar`` (the source, greedy / temperature-1 HF ``generate``), ``untrained`` (the source wrapped bidirectionally,
[MASK] added, no training) and each ``--variant NAME=DIR`` (a LoRA adapter dir or a full checkpoint dir) decoded by
the project's sampler at each of ``--steps`` (greedy low-confidence, blocks of 32; and temperature 1 for the
unconditional generative-perplexity samples). Generative perplexity is scored by the AR source itself (it shares its
weights with every row: compare rows with each other, not with other models); unigram entropy is the entropy of each
sample's token histogram, averaged (low = repetitive).
"""

from __future__ import annotations

import copy
import json
import math
import os


import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.adapt.ar_reference import ar_nll  # noqa: E402
from mdlm.adapt.args import AdaptArguments  # noqa: E402
from mdlm.adapt.build import build_mdm, separator_id  # noqa: E402
from mdlm.cli import ArgumentParser, refuse_overwrite, run_cli  # noqa: E402
from mdlm.pipelines.text import generate_text, sampler_config_from  # noqa: E402

PROMPTS = ["The ocean is", "Albert Einstein was a", "The history of the Roman Empire", "Water boils at"]
CHAT_PROMPTS = ["Define ocean.", "What is the capital of France?"]


def unigram_entropy(ids: torch.Tensor) -> float:
    """Mean over rows of the entropy (nats) of each row's token histogram. ids (B, L)."""
    out = []
    for row in ids.tolist():  # a few dozen rows of a report, not a hot loop
        counts = torch.bincount(torch.tensor(row)).float()
        p = counts[counts > 0] / len(row)
        out.append(float(-(p * p.log()).sum()))
    return sum(out) / len(out)


def judge_ppl(judge, ids: torch.Tensor, sep: int) -> float:
    s, n = ar_nll(judge, ids, sep)
    return math.exp(float(s.sum() / n.sum()))


@torch.no_grad()
def ar_rows(lm, tok, sep: int, gen: int, n_uncond: int, seed: int) -> dict:
    """The source's greedy continuations of the prompts and its temperature-1 unconditional samples."""
    dev = next(lm.parameters()).device
    texts = {}
    for chat, prompts in ((False, PROMPTS), (True, CHAT_PROMPTS)):
        for p in prompts:
            text = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) if chat else p
            ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids.to(dev)
            ids = torch.cat([torch.full_like(ids[:, :1], sep), ids], 1)
            out = lm.generate(ids, max_new_tokens=gen, do_sample=False, pad_token_id=tok.pad_token_id)
            texts[p] = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    torch.manual_seed(seed)
    start = torch.full((n_uncond, 1), sep, device=dev)
    unc = lm.generate(start, max_new_tokens=gen, min_new_tokens=gen, do_sample=True, temperature=1.0, top_k=0,
                      pad_token_id=tok.pad_token_id)[:, 1:]
    return {"prompted": texts, "uncond_ids": unc}


@torch.no_grad()
def mdm_rows(model, tok, steps: int, gen: int, n_uncond: int, seed: int) -> dict:
    base = {"mask_token_id": tok.mask_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
            "gen_length": gen, "steps": steps, "block_length": 32, "schedule": "even", "remasking": "low_confidence",
            "confidence": "prob", "temperature": 0.0}
    greedy, _ = sampler_config_from(base, {})
    texts = {}
    for chat, prompts in ((False, PROMPTS), (True, CHAT_PROMPTS)):
        out, _ = generate_text(model, tok, prompts, greedy, gen, seed=seed, chat=chat)
        texts.update(dict(zip(prompts, out)))
    sampled, _ = sampler_config_from({**base, "temperature": 1.0, "stop_at_eos": False}, {})
    dev = next(model.parameters()).device
    canvas = torch.full((n_uncond, gen), tok.mask_token_id, device=dev)
    from mdlm.sampling import generate

    out = generate(model, canvas, mask_id=tok.mask_token_id, config=sampled,
                   generator=torch.Generator(device=dev).manual_seed(seed))
    return {"prompted": texts, "uncond_ids": out.sequences}


def write_report(path: str, report: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, path)


def load_variant(base, path: str):
    if os.path.isfile(os.path.join(path, "adapter_config.json")):
        from mdlm.lora import load_adapter

        return load_adapter(copy.deepcopy(base), path)
    from transformers import AutoModelForMaskedLM

    return AutoModelForMaskedLM.from_pretrained(path, use_safetensors=True)


def parse(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--source", required=True, help="the AR source: an HF causal-LM dir (with --gguf_file: its GGUF)")
    p.add_argument("--gguf_file", help="a GGUF file name inside --source (needs the gguf package)")
    p.add_argument("--shift_token", help="Dream alignment's separator token (e.g. <|endoftext|>)")
    p.add_argument("--logit_alignment", default="dream", help="the untrained row's convention: dream or llada")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                   help="an adapted model (LoRA adapter or full checkpoint dir) as the row NAME; repeatable")
    p.add_argument("--steps", default="16,64,256", help="comma-separated sampler step counts")
    p.add_argument("--gen_length", type=int, default=256, help="tokens per sample")
    p.add_argument("--num_uncond", type=int, default=16, help="unconditional samples per row (generative perplexity)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="default: cuda if present")
    p.add_argument("--out", required=True, help="JSON of every sample and figure")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--skip_untrained", action="store_true", help="leave out the untrained wrapper's rows")
    return p.parse_args(argv)


@run_cli
def main(argv=None) -> int:
    a = parse(argv)
    refuse_overwrite(a.out, a.overwrite)
    variants = [v.split("=", 1) for v in a.variant]
    if any(len(v) != 2 for v in variants):
        raise ValueError("--variant takes NAME=DIR")
    model, tok = build_mdm(AdaptArguments(source=a.source, gguf_file=a.gguf_file, shift_token=a.shift_token,
                                          logit_alignment=a.logit_alignment))
    model.to(a.device).eval()
    sep = separator_id(model, tok)
    judge = copy.deepcopy(model.lm).eval()
    steps = [int(s) for s in a.steps.split(",")]
    report: dict = {"prompts": PROMPTS, "chat_prompts": CHAT_PROMPTS, "gen_length": a.gen_length, "rows": {}}
    ar = ar_rows(judge, tok, sep, a.gen_length, a.num_uncond, a.seed)
    report["rows"]["ar"] = {"prompted": ar["prompted"], "genppl": judge_ppl(judge, ar["uncond_ids"], sep),
                            "unigram_entropy": unigram_entropy(ar["uncond_ids"])}
    print(f"ar: genppl {report['rows']['ar']['genppl']:.1f}, unigram entropy {report['rows']['ar']['unigram_entropy']:.2f}",
          flush=True)
    write_report(a.out, report)
    for name, path in ([] if a.skip_untrained else [("untrained", None)]) + [tuple(v) for v in variants]:
        m = model if path is None else load_variant(model, path).to(a.device).eval()
        for s in steps:
            r = mdm_rows(m, tok, s, a.gen_length, a.num_uncond, a.seed)
            report["rows"][f"{name}@{s}"] = {"prompted": r["prompted"], "genppl": judge_ppl(judge, r["uncond_ids"], sep),
                                            "unigram_entropy": unigram_entropy(r["uncond_ids"]),
                                            "uncond_sample": tok.decode(r["uncond_ids"][0], skip_special_tokens=False)[:600]}
            row = report["rows"][f"{name}@{s}"]
            print(f"{name}@{s}: genppl {row['genppl']:.1f}, unigram entropy {row['unigram_entropy']:.2f}", flush=True)
            write_report(a.out, report)  # after every row: a time limit still leaves what was measured
    return 0


if __name__ == "__main__":
    main()
