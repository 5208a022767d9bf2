"""Exact validation perplexity of the autoregressive baseline, and the MDM / AR perplexity ratio.

    # train the baseline: the same transformer, causal attention, next-token loss
    python recipes/train_text.py --config recipes/configs/shakespeare_tiny.yaml --objective ar --output_dir runs/ar_tiny
    python eval/ar_ppl.py --model runs/ar_tiny                               # exact AR perplexity
    python eval/ar_ppl.py --model runs/ar_tiny --mdm runs/shakespeare_tiny   # + MDM ELBO bound and the ratio

Both models score exactly the same tokens: the validation split of ``--data`` packed like training
(EOS between documents) into rows of ``--seq-len`` (default: the smaller context, capped at 1024),
every token of every row (the AR model sees ``[EOS] x_0 … x_{L-2}``, see mdlm/training/ar.py). The
MDM figure is the Monte-Carlo NELBO of eval/elbo.py (an upper bound on its perplexity), so the ratio
MDM / AR ≥ the true ratio; MDLM (Sahoo et al. 2024) reports it within ~1.1–1.2 at scale.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import mdlm  # noqa: F401
from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli
from mdlm.data.text import load_text_corpus, pack_dataset
from mdlm.evaluation.elbo import corpus_elbo
from mdlm.evaluation.files import write_json
from mdlm.pipelines import load_for_generation
from mdlm.sampling import as_logits_fn
from mdlm.training.ar import ar_nll


def validation_ids(tok, data: str, seq_len: int, max_sequences: int | None) -> torch.Tensor:
    """(N, seq_len) packed validation rows — the same rows eval/elbo.py scores."""
    ds = pack_dataset(load_text_corpus(data)["validation"], tok, seq_len)
    if max_sequences:
        ds = ds.select(range(min(max_sequences, len(ds))))
    return torch.tensor(ds["input_ids"])


@torch.no_grad()
def ar_figures(model, ids: torch.Tensor, start_id: int, batch_size: int, device: str) -> dict:
    nll, n = 0.0, 0
    for i in range(0, len(ids), batch_size):
        x = ids[i : i + batch_size].to(device)
        s, c = ar_nll(model, x, torch.ones_like(x, dtype=torch.bool), start_id)
        nll, n = nll + float(s.double().sum()), n + int(c.sum())
    nats = nll / max(n, 1)
    return {"nats_per_token": nats, "bits_per_token": nats / math.log(2), "perplexity": math.exp(min(nats, 700)),
            "tokens": n}


def mdm_figures(model, ids: torch.Tensor, mask_id: int, num_samples: int, batch_size: int, device: str, seed: int) -> dict:
    g = torch.Generator(device=device).manual_seed(seed)
    r = corpus_elbo(as_logits_fn(model), ids, mask_id=mask_id, batch_size=batch_size, num_samples=num_samples,
                    generator=g, device=device)
    return {"nats_per_token": r.nats_per_token, "bits_per_token": r.bits_per_token, "perplexity": r.perplexity,
            "tokens": int(r.num_tokens.sum()), "num_samples": num_samples}


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="AR checkpoint (trained with --objective ar)")
    p.add_argument("--mdm", help="masked-diffusion checkpoint to compare with (same tokenizer)")
    p.add_argument("--data", default="shakespeare")
    p.add_argument("--seq-len", type=positive_int)
    p.add_argument("--max-sequences", type=positive_int)
    p.add_argument("--num-samples", type=positive_int, default=8, help="Monte-Carlo samples of the MDM ELBO")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="also write the figures here (an existing file is refused unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    a = p.parse_args()
    refuse_overwrite(a.json, a.overwrite)
    ar = load_for_generation(a.model, device=a.device)
    if not getattr(ar.model.config, "is_causal", False):
        raise UserError(f"{a.model} is not a causal model (config.is_causal is false); train one with --objective ar")
    if ar.tokenizer is None or ar.tokenizer.eos_token_id is None:
        raise UserError(f"{a.model} has no tokenizer with an EOS token")
    ctx = ar.model.config.max_position_embeddings
    mdm = None
    if a.mdm:
        mdm = load_for_generation(a.mdm, device=a.device)
        if getattr(mdm.model.config, "is_causal", False):
            raise UserError(f"--mdm {a.mdm} is a causal model")
        if mdm.tokenizer is None or mdm.tokenizer.get_vocab() != ar.tokenizer.get_vocab():
            raise UserError("the AR and MDM checkpoints do not share a tokenizer; their perplexities are not comparable")
        ctx = min(ctx, mdm.model.config.max_position_embeddings)
    seq_len = a.seq_len if a.seq_len is not None else min(ctx, 1024)
    if seq_len > ctx:
        raise UserError(f"--seq-len {seq_len} exceeds the context of {ctx}")
    ids = validation_ids(ar.tokenizer, a.data, seq_len, a.max_sequences)
    if len(ids) == 0:
        raise UserError(f"--data {a.data}: its validation split holds no text")
    t0 = time.perf_counter()
    out = {"data": a.data, "seq_len": seq_len, "sequences": len(ids), "ar_model": a.model,
           "ar": ar_figures(ar.model, ids, ar.tokenizer.eos_token_id, a.batch_size, a.device)}
    out["ar"]["seconds"] = round(time.perf_counter() - t0, 2)
    r = out["ar"]
    print(f"AR  perplexity = {r['perplexity']:.3f} (exact) | {r['bits_per_token']:.4f} bits/token | {r['tokens']} tokens "
          f"({a.data} validation, rows of {seq_len})")
    if mdm is not None:
        t0 = time.perf_counter()
        out["mdm_model"] = a.mdm
        out["mdm"] = mdm_figures(mdm.model, ids, mdm.tokenizer.mask_token_id, a.num_samples, a.batch_size, a.device, a.seed)
        out["mdm"]["seconds"] = round(time.perf_counter() - t0, 2)
        m = out["mdm"]
        out["ppl_ratio_mdm_over_ar"] = m["perplexity"] / r["perplexity"]
        print(f"MDM perplexity ≤ {m['perplexity']:.3f} (ELBO, {a.num_samples} samples) | {m['bits_per_token']:.4f} bits/token")
        print(f"ratio MDM / AR = {out['ppl_ratio_mdm_over_ar']:.3f} (an upper bound: the MDM figure is a bound)")
    if a.json:
        write_json(a.json, out)
    return 0


if __name__ == "__main__":
    main()
