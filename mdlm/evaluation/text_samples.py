"""Text samples for evaluation: generations of a checkpoint (unconditional or after a prompt) and
chunks of real validation text of the same length, as rows ``{"text", "prompt"?, "ids"}`` (``ids``: the
model's tokens), and their JSONL files."""

from __future__ import annotations

import json
import os

import torch

from ..cli import UserError
from .files import jsonl_objects
from ..pipelines.text import build_text_canvas
from ..sampling import SamplerConfig, generate, trim_at_eos

@torch.no_grad()
def sample_texts(
    model: torch.nn.Module, tok, config: SamplerConfig, num_samples: int, gen_length: int, *,
    prompt: str = "", batch_size: int = 16, seed: int = 0,
) -> tuple[list[dict], int]:
    """``num_samples`` generations of ``gen_length`` tokens after ``prompt`` ("" = unconditional), in
    batches; batch k uses seed ``seed + k``. Returns (rows {"text", "prompt"?, "ids"}, NFE per sample)."""
    device = next(model.parameters()).device
    suppress = [i for i in (tok.pad_token_id,) if i is not None and i != tok.eos_token_id]
    rows, nfe = [], 0
    for k, b in enumerate(range(0, num_samples, batch_size)):
        n = min(batch_size, num_samples - b)
        canvas, attn, cond = build_text_canvas(tok, [prompt] * n, gen_length,
                                               getattr(model.config, "max_position_embeddings", None))
        out = generate(model, canvas.to(device), mask_id=tok.mask_token_id, config=config,
                       attention_mask=attn.to(device), cond_mask=cond.to(device), suppress_tokens=suppress,
                       eos_id=tok.eos_token_id, generator=torch.Generator(device=device).manual_seed(seed + k),
                       vocab_size=len(tok))
        nfe = max(nfe, out.nfe)
        gen = out.sequences[:, canvas.shape[1] - gen_length :]  # (n, gen_length)
        for ids in trim_at_eos(gen, tok.eos_token_id):
            ids = [int(i) for i in ids]
            row = {"text": tok.decode(ids, skip_special_tokens=True), "ids": ids}
            if prompt:
                row["prompt"] = prompt
            rows.append(row)
    return rows, nfe


def reference_texts(tok, corpus: str, num_samples: int, length: int) -> list[dict]:
    """The first ``num_samples`` chunks of ``length`` model tokens of ``corpus``'s validation split, decoded:
    real text of the samples' length, to put the samples' genppl and entropy in context."""
    from mdlm.data.text import load_text_corpus, pack_dataset

    data = pack_dataset(load_text_corpus(corpus)["validation"], tok, length)
    n = min(num_samples, len(data))
    stride = max(len(data) // n, 1)  # spread over the split, not the first scene only
    rows = []
    for i in range(n):
        ids = [int(t) for t in data[i * stride]["input_ids"]]
        rows.append({"text": tok.decode(ids, skip_special_tokens=True), "ids": ids})
    return rows


def write_samples(path: str, rows: list[dict]) -> None:
    """One JSON object per line (the rows of :func:`sample_texts` / :func:`reference_texts`), written to a
    temporary file first so a cut run never leaves half a file under ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_samples(path: str) -> list[dict]:
    """The rows :func:`write_samples` wrote (each with "text" and "ids"); one UserError naming the file and
    line otherwise."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, x in jsonl_objects(path, f):
            if not isinstance(x.get("text"), str) or not isinstance(x.get("ids"), list):
                raise UserError(f"{path}:{n}: each sample needs a string \"text\" and a list \"ids\"")
            rows.append(x)
    if not rows:
        raise UserError(f"{path} holds no samples")
    return rows
