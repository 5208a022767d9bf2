"""Content of SFT answers on held-out words: adapted base MDM vs SFT-tuned MDM vs the AR source (issue #16 item 4).

    python eval/sft_content_eval.py --base runs/smollm2_chat/base --adapter runs/smollm2_chat/sft \\
        --data .data/sft_mix --ar-source $SMOL --ar-gguf SmolLM2-135M-Instruct.Q4_1.gguf --out runs/sft_content

Figures (mdlm/evaluation/sft_content.py; the same rows, greedy answers, the tuned adapter's chat sampler for both MDMs):
* definition content — share of "Define X." answers naming a gloss head word or a synonym/hypernym lemma of X;
* synonym exact — share of "Give a synonym of X." answers equal to another lemma of X's synsets;
* response ELBO (nats per response token) of ``heldout_eval.jsonl`` for both MDMs (``--num-elbo 0``: skipped);
* a side-by-side table of held-out prompts (WordNet define/synonym, GCIDE, wiki, chatterbot).
``--data`` is a dir of ``recipes/sft_lora.py prepare`` (heldout.jsonl, heldout_eval.jsonl, content_refs.json).
Writes OUT/sft_content.json and OUT/sft_content.md (refused if present, unless --overwrite).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch

import mdlm  # noqa: F401
from mdlm.cli import (
    ArgumentParser,
    UserError,
    non_negative_int,
    positive_int,
    refuse_overwrite,
    run_cli,
)
from mdlm.evaluation.files import write_report
from mdlm.evaluation.sft_content import content_scores, pick_rows, side_by_side_markdown

OUTPUTS = ("sft_content.json", "sft_content.md")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the adapted MDM (the SFT base) dir")
    p.add_argument("--adapter", required=True, help="the SFT LoRA adapter dir")
    p.add_argument("--data", required=True, help="dir written by `recipes/sft_lora.py prepare`")
    p.add_argument("--out", required=True, help="dir for sft_content.json and sft_content.md")
    p.add_argument("--ar-source", help="dir of the AR source (its chat answers as a third column)")
    p.add_argument("--ar-gguf", help="GGUF file inside --ar-source")
    p.add_argument("--num-per-task", type=positive_int, default=200, help="held-out define and synonym prompts each")
    p.add_argument("--num-other", type=non_negative_int, default=4, help="held-out prompts of each other source")
    p.add_argument("--show", type=non_negative_int, default=36, help="rows of the side-by-side table")
    p.add_argument("--num-elbo", type=non_negative_int, default=512, help="heldout_eval rows scored by the ELBO")
    p.add_argument("--elbo-samples", type=positive_int, default=8, help="Monte-Carlo samples per ELBO row")
    p.add_argument("--gen-length", type=positive_int, help="default: the adapter's generation_config.json")
    p.add_argument("--steps", type=positive_int)
    p.add_argument("--block-length", type=positive_int)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    for name in ("heldout.jsonl", "heldout_eval.jsonl", "content_refs.json"):
        if not os.path.isfile(os.path.join(a.data, name)):
            raise UserError(f"--data {a.data!r} has no {name} (make it with `recipes/sft_lora.py prepare`)")
    for name in OUTPUTS:
        refuse_overwrite(os.path.join(a.out, name), a.overwrite)
    return a


def _jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def response_elbo_of(model, tok, rows: list[dict], a) -> float:
    from datasets import Dataset

    from mdlm.data.sft import SFTCollator, tokenize_sft_dataset
    from mdlm.evaluation.sft import response_elbo

    ds = Dataset.from_list([{"prompt": r["prompt"], "response": r["response"]} for r in rows])
    feats = tokenize_sft_dataset(ds, tok, max_length=model.config.max_position_embeddings, pad_policy="mask",
                                 padding="longest", truncate_prompt="left")
    res = response_elbo(model, tok, feats, SFTCollator.from_tokenizer(tok, "mask"), num_samples=a.elbo_samples,
                        seed=a.seed, batch_size=a.batch_size, device=a.device)
    return res["nats_per_token"]


def mdm_answers(model, tok, prompts, config, gen_length, a) -> tuple[list[str], float]:
    from mdlm.evaluation.sft import generate_answers

    t0 = time.perf_counter()
    out = generate_answers(model, tok, prompts, config, gen_length, seed=a.seed, batch_size=a.batch_size)
    return out, time.perf_counter() - t0


def evaluate(a) -> dict:
    from transformers import AutoModelForMaskedLM

    from mdlm.pipelines import load_for_generation
    from mdlm.pipelines.text import sampler_config_from

    t_start = time.perf_counter()
    with open(os.path.join(a.data, "content_refs.json"), encoding="utf-8") as f:
        refs = json.load(f)
    rows = pick_rows(_jsonl(os.path.join(a.data, "heldout.jsonl")), refs, a.num_per_task, a.seed, a.num_other)
    elbo_rows = _jsonl(os.path.join(a.data, "heldout_eval.jsonl"))[: a.num_elbo]
    prompts = [r["prompt"] for r in rows]
    tuned = load_for_generation(a.adapter, device=a.device)
    tok = tuned.tokenizer
    if tok is None:
        raise UserError(f"{a.adapter} has no tokenizer files")
    base = AutoModelForMaskedLM.from_pretrained(a.base, use_safetensors=True).to(a.device).eval()
    overrides = {"gen_length": a.gen_length, "steps": a.steps or a.gen_length, "block_length": a.block_length}
    config, gen_length = sampler_config_from(tuned.defaults, overrides)
    answers, seconds, elbo = {}, {}, {}
    for name, model in (("adapted MDM", base), ("SFT MDM", tuned.model)):
        answers[name], seconds[name] = mdm_answers(model, tok, prompts, config, gen_length, a)
        if elbo_rows:
            elbo[name] = response_elbo_of(model, tok, elbo_rows, a)
        print(f"{name}: {len(prompts)} answers in {seconds[name]:.1f} s"
              + (f", response ELBO {elbo[name]:.4f} nats/token" if name in elbo else ""), file=sys.stderr, flush=True)
    del base
    if a.ar_source:
        from mdlm.adapt import load_causal_lm
        from mdlm.adapt.ar_chat import ar_chat_answers

        lm, ar_tok = load_causal_lm(a.ar_source, a.ar_gguf)
        lm = lm.to(a.device).eval()
        t0 = time.perf_counter()
        answers["AR source"] = ar_chat_answers(lm, ar_tok, prompts, gen_length, batch_size=a.batch_size)
        seconds["AR source"] = time.perf_counter() - t0
    scores = {n: content_scores(rows, ans, refs) for n, ans in answers.items()}
    order = [n for n in ("AR source", "adapted MDM", "SFT MDM") if n in answers]
    return {
        "base": a.base, "adapter": a.adapter, "data": a.data, "ar_source": a.ar_source, "device": a.device,
        "sampler": f"gen_length {gen_length}, steps {config.steps}, block {config.block_length}, "
                   f"temperature {config.temperature}",
        "num_rows": len(rows), "num_elbo": len(elbo_rows), "elbo_samples": a.elbo_samples,
        "metrics": {n: {"definition_content": scores[n]["define"], "synonym_exact": scores[n]["synonym"],
                        "response_elbo_nats": elbo.get(n), "generation_seconds": seconds[n],
                        "mean_answer_words": sum(len(x.split()) for x in answers[n]) / max(1, len(answers[n]))}
                    for n in order},
        "rows": [{**r, "answers": {n: answers[n][i] for n in order},
                  "scored": {n: scores[n]["per_row"][i] for n in order}} for i, r in enumerate(rows)],
        "side_by_side": side_by_side_markdown(rows, {n: answers[n] for n in order},
                                              {n: scores[n]["per_row"] for n in order}, a.show),
        "wall_seconds": time.perf_counter() - t_start,
    }


def _pct(s: dict) -> str:
    return "n/a" if not s["n"] else f"{100 * s['share']:.1f}% ({s['hits']}/{s['n']})"


def markdown(res: dict) -> str:
    m = res["metrics"]
    names = list(m)
    elbo = lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"
    lines = [f"# SFT content: `{res['adapter']}` on `{res['base']}`", "",
             (f"{res['num_rows']} held-out prompts ({res['sampler']}; AR source: greedy HF generate); response ELBO "
              f"over {res['num_elbo']} held-out examples × {res['elbo_samples']} samples."), "",
             "| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
             "| definition names a gloss head / synonym | " + " | ".join(_pct(m[n]["definition_content"]) for n in names) + " |",
             "| synonym exact match | " + " | ".join(_pct(m[n]["synonym_exact"]) for n in names) + " |",
             "| response ELBO (nats/token) | " + " | ".join(elbo(m[n]["response_elbo_nats"]) for n in names) + " |",
             "| mean answer length (words; longer answers name more terms) | "
             + " | ".join(f"{m[n]['mean_answer_words']:.1f}" for n in names) + " |",
             "", "## Side by side (✓/✗: the content metric)", "", res["side_by_side"]]
    return "\n".join(lines)


@run_cli
def main() -> int:
    a = parse_args()
    torch.manual_seed(a.seed)
    res = evaluate(a)
    write_report(a.out, "sft_content", res, markdown(res))
    return 0


if __name__ == "__main__":
    main()
