"""Generative perplexity of sample files and lists of texts: the figures of one set of samples under a
judge LM (:mod:`mdlm.evaluation.genppl`: token-weighted genppl, per-sample mean, unigram entropy, counts)."""

from __future__ import annotations

import os
import time

from tqdm.auto import tqdm

from ..cli import UserError
from .files import jsonl_objects
from .genppl import Judge, judge_nll, mean_unigram_entropy


def read_sample_file(path: str, split: str = "paragraph") -> tuple[list[str], list[str] | None]:
    """(texts, prompts or None) from a JSONL file (``text``, optional ``prompt``) or a plain text file."""
    if not os.path.isfile(path):
        raise UserError(f"sample file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    if path.endswith((".jsonl", ".json")):
        texts, prompts, any_prompt = [], [], False
        for n, row in jsonl_objects(path, raw.splitlines()):
            if not isinstance(row.get("text"), str):
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
    texts, prompts = read_sample_file(path, split)
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
