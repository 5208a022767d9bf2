"""Base vs LoRA-tuned model on held-out instructions: response-only ELBO, answer format, generations.

    python eval/sft_eval.py --base runs/base_tiny --adapter runs/wordnet_lora_tiny --num-examples 60 \\
        --out runs/wordnet_lora_tiny/eval
    # a user held-out JSONL instead of WordNet's held-out words (format share only for rows with task/word)
    python eval/sft_eval.py --base DIR --adapter DIR --eval-files heldout.jsonl --out DIR

Figures (the same held-out subset and the same random masks / sampler seed for both models):

* response ELBO — nats per response token: ``prompt ‖ response ‖ EOS`` with only response + EOS masked
  and scored (``eval_pad_policy="mask"`` of recipes/sft_lora.py; LLaDA's conditional likelihood;
  mdlm/evaluation/sft.py), over
  ``--num-elbo`` examples (the recipe's ``eval_nll`` subset when equal to its ``max_eval_examples``);
* format share — the share of ``--num-examples`` generated answers (chat format, the adapter's
  sampler defaults) that ``mdlm.data.wordnet.check_format`` accepts, overall and per task;
* ``--show`` generations side by side (markdown table).

Writes ``OUT/sft_eval.json`` and ``OUT/sft_eval.md`` (refused if they exist, unless ``--overwrite``) and
prints the markdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from transformers import AutoModelForMaskedLM

import mdlm  # noqa: F401
from mdlm.cli import (
    ArgumentParser,
    UserError,
    non_negative_int,
    positive_int,
    refuse_overwrite,
    run_cli,
)
from mdlm.data.sft import SFTCollator, load_sft_jsonl, tokenize_sft_dataset
from mdlm.data.sft_sources import select_eval, wordnet_data
from mdlm.data.wordnet import WORDNET_DIR, load_exceptions
from mdlm.evaluation.files import write_report
from mdlm.evaluation.sft import measure_model, percent, sft_markdown, stratified
from mdlm.pipelines import load_for_generation
from mdlm.pipelines.text import sampler_config_from
from mdlm.training.sft import row_prompt

OUTPUTS = ("sft_eval.json", "sft_eval.md")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="base checkpoint dir")
    p.add_argument("--adapter", required=True, help="LoRA adapter dir (recipes/sft_lora.py output)")
    p.add_argument("--out", required=True, help="dir for sft_eval.json and sft_eval.md")
    p.add_argument("--num-examples", type=positive_int, default=60, help="held-out prompts generated for the format share")
    p.add_argument("--num-elbo", type=positive_int, default=256, help="held-out examples scored by the response ELBO")
    p.add_argument("--elbo-samples", type=positive_int, default=4, help="Monte-Carlo samples per example")
    p.add_argument("--show", type=non_negative_int, default=12, help="generations shown side by side")
    p.add_argument("--eval-files", nargs="+", help="held-out JSONL (default: WordNet held-out words)")
    p.add_argument("--wordnet-dir", default=None)
    p.add_argument("--max-length", type=positive_int, default=None, help="default: the model's context")
    p.add_argument("--gen-length", type=positive_int, help="default: the adapter's generation_config.json")
    p.add_argument("--steps", type=positive_int)
    p.add_argument("--block-length", type=positive_int)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--overwrite", action="store_true", help="replace existing OUT/sft_eval.json and sft_eval.md")
    a = p.parse_args(argv)
    for name in OUTPUTS:
        refuse_overwrite(os.path.join(a.out, name), a.overwrite)
    return a


def heldout_rows(a):
    """(rows for the ELBO, rows for generation): fixed subsets of the held-out set."""
    if a.eval_files:
        rows = load_sft_jsonl(a.eval_files)
    else:
        rows = wordnet_data(a.wordnet_dir or WORDNET_DIR)["heldout"]
    return select_eval(rows, a.num_elbo), stratified(rows, a.num_examples, seed=a.seed)


def evaluate(a: argparse.Namespace) -> dict:
    t_start = time.perf_counter()
    tuned = load_for_generation(a.adapter, device=a.device)
    if os.path.abspath(tuned.base_dir) != os.path.abspath(a.base):
        print(f"note: the adapter names base {tuned.base_dir}; comparing against --base {a.base}", file=sys.stderr)
    base = AutoModelForMaskedLM.from_pretrained(a.base, use_safetensors=True).to(a.device).eval()
    tok = tuned.tokenizer
    if tok is None:
        raise UserError(f"{a.adapter} has no tokenizer files")
    overrides = {"gen_length": a.gen_length, "steps": a.steps or a.gen_length, "block_length": a.block_length}
    config, gen_length = sampler_config_from(tuned.defaults, overrides)
    elbo_rows, gen_rows = heldout_rows(a)
    max_length = a.max_length or base.config.max_position_embeddings
    feats = tokenize_sft_dataset(elbo_rows, tok, max_length=max_length, pad_policy="mask", padding="longest",
                                 truncate_prompt="left")
    collator = SFTCollator.from_tokenizer(tok, "mask")
    exceptions = None
    if not a.eval_files:
        exceptions = load_exceptions(a.wordnet_dir or WORDNET_DIR)
    prompts = [row_prompt(r) for r in gen_rows]
    refs = [r["response"] if "response" in r else r["messages"][-1]["content"] for r in gen_rows]
    rows_list = [dict(r) for r in gen_rows]

    results: dict = {}
    for name, model in (("base", base), ("tuned", tuned.model)):
        results[name] = measure_model(model, tok, feats, collator, elbo_rows, prompts, rows_list, config, gen_length,
                                      exceptions, num_samples=a.elbo_samples, seed=a.seed, batch_size=a.batch_size,
                                      device=a.device)
        r = results[name]
        print(f"{name}: response ELBO {r['elbo_nats_per_token']:.4f} nats/token ({r['elbo_seconds']:.1f}s) | format "
              f"share {percent(r['format_share']['all'])} of {r['format_share']['n']} ({r['generation_seconds']:.1f}s)",
              file=sys.stderr, flush=True)
    examples = [
        {"prompt": p, "task": r.get("task"), "word": r.get("word"), "reference": ref,
         "base": results["base"]["answers"][i], "tuned": results["tuned"]["answers"][i],
         "base_ok": results["base"]["format_ok"][i], "tuned_ok": results["tuned"]["format_ok"][i]}
        for i, (p, r, ref) in enumerate(zip(prompts, rows_list, refs))
    ]
    return {
        "base_dir": a.base,
        "adapter": a.adapter,
        "heldout": ", ".join(a.eval_files) if a.eval_files else "WordNet held-out words",
        "num_elbo": len(elbo_rows),
        "elbo_samples": a.elbo_samples,
        "elbo_tokens": results["tuned"].pop("elbo_tokens"),
        "num_examples": len(gen_rows),
        "sampler": f"gen_length {gen_length}, steps {config.steps}, block {config.block_length}, "
                   f"temperature {config.temperature}, {config.unmasking}",
        "seed": a.seed,
        "device": a.device,
        "base": {k: v for k, v in results["base"].items() if k not in ("answers", "format_ok", "elbo_tokens")},
        "tuned": {k: v for k, v in results["tuned"].items() if k not in ("answers", "format_ok")},
        "examples_all": examples,
        "examples": examples[: a.show],
        "wall_seconds": time.perf_counter() - t_start,
    }


@run_cli
def main() -> int:
    a = parse_args()
    torch.manual_seed(a.seed)
    res = evaluate(a)
    write_report(a.out, "sft_eval", res, sft_markdown(res))
    return 0


if __name__ == "__main__":
    main()
