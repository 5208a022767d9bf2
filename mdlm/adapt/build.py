"""The pieces ``recipes/adapt_ar.py`` assembles: the MDM built from its source, the data, the AR reference and
the results file (the time budget is mdlm.training.callbacks.TimeBudget)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from ..data.packed import load_packed, pack_documents, save_packed
from ..modeling.causal_backbone import CausalBackboneForMaskedLM, check_bidirectional
from .args import AdaptArguments
from .ar_reference import ar_dataset_nll
from .source import load_causal_lm, to_masked_diffusion


def build_mdm(a: AdaptArguments) -> tuple[CausalBackboneForMaskedLM, Any]:
    """(bidirectional MDM with [MASK], tokenizer) from ``--source``/``--gguf_file`` or ``--random_config``."""
    dtype = getattr(torch, a.dtype)
    if a.source and a.random_config:
        raise ValueError("pass either --source or --random_config, not both")
    if a.source:
        lm, tok = load_causal_lm(a.source, a.gguf_file, dtype=dtype)
    elif a.random_config:
        from ..tokenizers import load_tokenizer

        spec = json.loads(a.random_config)
        if "model_type" not in spec:
            raise ValueError("--random_config needs a model_type, e.g. llama, qwen2, gpt2")
        tok = load_tokenizer(a.tokenizer)
        if tok.mask_token is not None:  # our tokenizers come with [MASK]; adapting adds its own
            tok.mask_token = None
        spec.setdefault("vocab_size", len(tok))
        cfg = AutoConfig.for_model(**spec)
        if type(cfg) not in __import__("transformers").models.auto.modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING:
            raise ValueError(f"--random_config model_type {cfg.model_type!r} has no causal-LM head")
        lm = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    else:
        raise ValueError("pass --source DIR (optionally with --gguf_file) or --random_config JSON")
    model, tok = to_masked_diffusion(lm, tok, logit_alignment=a.logit_alignment, shift_token=a.shift_token,
                                     mask_token=a.mask_token, allow_resize=a.allow_resize)
    check_bidirectional(model)
    return model, tok


def separator_id(model: CausalBackboneForMaskedLM, tok) -> int:
    """The document separator: the Dream shift token, else the tokenizer's BOS / EOS."""
    sid = model.config.shift_token_id
    if sid is None:
        sid = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if sid is None:
        raise ValueError("the tokenizer has neither BOS nor EOS to separate documents; pass --shift_token")
    return int(sid)


def prepare_data(a: AdaptArguments, tok, sep: int) -> str:
    """Tokenise each corpus of ``--data``; write train (all corpora, concatenated and shuffled by row) and one
    ``validation_<corpus>`` array per corpus to ``--prepare_data``."""
    from ..data.english import load_english
    from ..training.checkpoint import publish_files  # noqa: F401  (same atomic-write habit, via save_packed)

    caps = json.loads(a.prepare_max_tokens) if a.prepare_max_tokens else {}
    train, splits = [], {}
    for name in a.data.split("+"):
        dd = load_english(name)
        train.append(pack_documents(dd["train"]["text"], tok, a.seq_len, sep, max_tokens=caps.get(name)))
        splits[f"validation_{name}"] = pack_documents(dd["validation"]["text"], tok, a.seq_len, sep)[: a.max_eval_rows]
        print(f"{name}: {train[-1].size:,} train tokens, {splits[f'validation_{name}'].size:,} validation tokens", flush=True)
    rows = np.concatenate(train)
    rows = rows[np.random.default_rng(0).permutation(len(rows))]
    return save_packed(a.prepare_data, {"train": rows, **splits}, vocab_size=len(tok))


def build_datasets(a: AdaptArguments, tok, sep: int):
    """(train Dataset, {eval name: Dataset}) of ``input_ids`` rows of ``seq_len`` tokens."""
    names = [s.strip() for s in a.eval_splits.split(",") if s.strip()]
    if a.data.endswith(".npz"):
        train = load_packed(a.data, "train")
        evals = {n: load_packed(a.data, n, a.max_eval_rows) for n in names}
    else:
        from datasets import Dataset

        from ..data.english import load_english

        dd = load_english(a.data)
        train = Dataset.from_dict({"input_ids": pack_documents(dd["train"]["text"], tok, a.seq_len, sep)})
        evals = {n: Dataset.from_dict({"input_ids": pack_documents(dd[n]["text"], tok, a.seq_len, sep)[: a.max_eval_rows]})
                 for n in names}
    if train.num_rows and len(train[0]["input_ids"]) != a.seq_len:
        raise ValueError(f"{a.data} holds rows of {len(train[0]['input_ids'])} tokens, not --seq_len {a.seq_len}")
    return train, evals


def ar_reference(model: CausalBackboneForMaskedLM, evals: dict, sep: int, mask_id: int) -> dict[str, float]:
    """Exact AR NLL (nats/token) of the source (the wrapped LM, run causally) on every eval set."""
    was = model.training
    model.eval()
    out = {name: ar_dataset_nll(model.lm, torch.as_tensor(ds["input_ids"]), sep, mask_id) for name, ds in evals.items()}
    model.train(was)
    return out


def restrict_to_projections(model: torch.nn.Module, target_modules, row_ids: list[int]) -> int:
    """Full fine-tuning of only what a LoRA extraction can carry (``mdlm.adapt.extract``): the weights of the
    ``target_modules`` projections and the embedding rows ``row_ids`` (the other rows' gradients are zeroed by a
    hook; with weight decay 0 Adam then leaves them untouched). Everything else is frozen. Returns the number of
    parameters that can change."""
    emb = model.get_input_embeddings().weight
    targets = set(target_modules)
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith(".weight") and name.removesuffix(".weight").rsplit(".", 1)[-1] in targets)
    emb.requires_grad_(True)
    keep = torch.zeros(emb.shape[0], 1, dtype=emb.dtype, device=emb.device)  # (V, 1)
    keep[row_ids] = 1
    emb.register_hook(lambda g: g * keep.to(g.device, g.dtype))
    return sum(p.numel() for p in model.parameters() if p.requires_grad and p is not emb) + len(row_ids) * emb.shape[1]


def generation_defaults(tok, seq_len: int) -> dict:
    gen = min(128, seq_len // 2)
    return {"mask_token_id": tok.mask_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
            "steps": gen, "gen_length": gen, "block_length": min(32, gen), "temperature": 0.0,
            "remasking": "low_confidence", "confidence": "prob", "schedule": "even"}


def ratio_curve(log_history: list[dict], ar_nats: dict[str, float], tokens_per_step: int) -> list[dict]:
    """One point per evaluation: training tokens, ELBO ppl and its ratio to the AR source's ppl per eval set."""
    points, seen = [], set()
    for rec in log_history:
        for name, nats in ar_nats.items():
            key = f"eval_{name}_nll"
            if key in rec and (rec["step"], name) not in seen:  # the last step may be evaluated twice (same masks)
                seen.add((rec["step"], name))
                points.append({"step": rec["step"], "tokens": rec["step"] * tokens_per_step, "eval": name,
                               "elbo_ppl": math.exp(rec[key]), "ar_ppl": math.exp(nats),
                               "ratio": math.exp(rec[key] - nats)})
    return points


def write_json(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def multi_eval_trainer_class():
    """``MDMTrainer`` whose ``evaluate`` takes a dict of eval sets (metrics ``eval_<name>_…`` for each)."""
    from ..training import MDMTrainer

    class AdaptTrainer(MDMTrainer):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
            ds = eval_dataset if eval_dataset is not None else self.eval_dataset
            if not isinstance(ds, dict):
                return super().evaluate(ds, ignore_keys, metric_key_prefix)
            metrics: dict[str, float] = {}
            for name, one in ds.items():
                metrics.update(super().evaluate(one, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics

    return AdaptTrainer
