"""Building the pieces a text recipe needs: tokenizer, model, packed datasets, run fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict

from transformers import AutoConfig, AutoModelForMaskedLM, PreTrainedModel, PreTrainedTokenizerBase

from ..data.text import load_text_corpus, pack_dataset
from ..modeling import MDLMConfig, MDLMForMaskedLM
from ..tokenizers import load_tokenizer, padded_vocab_size
from ..weights import check_finite_model, check_weights_dir
from .args import DataArguments, DiffusionArguments, ModelArguments


def default_intermediate_size(hidden: int) -> int:
    """SwiGLU width ≈ 8/3 · hidden, rounded up to a multiple of 64 (LLaMA's rule)."""
    return (int(8 * hidden / 3) + 63) // 64 * 64


def parse_model_config(text: str | None) -> dict:
    """``--model_config``: a JSON object of extra config fields (ValueError naming the option otherwise)."""
    if not text:
        return {}
    try:
        extra = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--model_config is not valid JSON ({e.msg} at column {e.colno}): {text!r}") from None
    if not isinstance(extra, dict):
        raise ValueError(f"--model_config must be a JSON object of config fields, got {text!r}")
    return extra


def load_start_model(path: str, attn_implementation: str) -> PreTrainedModel:
    """``--model_name_or_path``: a local checkpoint with whole, finite safetensors weights (pickle refused)."""
    if not os.path.isdir(path):
        raise ValueError(f"model_name_or_path {path!r} is not a directory")
    check_weights_dir(path, what="model_name_or_path")
    model = AutoModelForMaskedLM.from_pretrained(path, attn_implementation=attn_implementation, use_safetensors=True)
    check_finite_model(model, path)
    return model


def build_model(margs: ModelArguments, tok: PreTrainedTokenizerBase, seq_len: int) -> PreTrainedModel:
    """A new model from ``margs`` or the checkpoint ``margs.model_name_or_path``; checks that the
    tokenizer's ids fit the vocabulary and ``seq_len`` fits the positions. ``--model_config`` fields
    override the ones derived from the arguments and the tokenizer (bad values: one ValueError)."""
    if margs.model_name_or_path:
        model = load_start_model(margs.model_name_or_path, margs.attn_implementation)
    else:
        common = dict(
            vocab_size=padded_vocab_size(tok),
            hidden_size=margs.hidden_size,
            num_hidden_layers=margs.num_hidden_layers,
            num_attention_heads=margs.num_attention_heads,
            intermediate_size=margs.intermediate_size or default_intermediate_size(margs.hidden_size),
            max_position_embeddings=margs.max_position_embeddings or seq_len,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            mask_token_id=tok.mask_token_id,
        )
        fields = {**common, **parse_model_config(margs.model_config)}
        if margs.model_type == "mdlm":
            try:
                cfg = MDLMConfig(num_key_value_heads=margs.num_key_value_heads, rope_theta=margs.rope_theta, **fields)
            except (ValueError, TypeError) as e:
                where = "--model_config" if margs.model_config else "model arguments"
                raise ValueError(f"bad {where}: {e}") from None
            cfg._attn_implementation = margs.attn_implementation
            model = MDLMForMaskedLM(cfg)
        else:
            mask_id = fields.pop("mask_token_id")
            try:
                cfg = AutoConfig.for_model(margs.model_type, **fields)
            except ValueError as e:
                raise ValueError(f"unknown model_type {margs.model_type!r}: {e}") from None
            except TypeError as e:
                raise ValueError(f"--model_config does not fit model_type {margs.model_type!r}: {e}") from None
            cfg.mask_token_id = mask_id
            model = AutoModelForMaskedLM.from_config(cfg, attn_implementation=margs.attn_implementation)
    check_model_fits(model, tok, seq_len)
    return model


def check_model_fits(model: PreTrainedModel, tok: PreTrainedTokenizerBase, seq_len: int) -> None:
    vocab = model.get_input_embeddings().num_embeddings
    mask_id = tok.mask_token_id
    if mask_id is None:
        raise ValueError("the tokenizer has no [MASK] token")
    if not 0 <= mask_id < vocab:
        raise ValueError(f"mask id {mask_id} lies outside the model's vocabulary (size {vocab})")
    cfg_mask = getattr(model.config, "mask_token_id", None)
    if cfg_mask is not None and cfg_mask != mask_id:
        raise ValueError(f"the model's mask_token_id {cfg_mask} is not the tokenizer's [MASK] id {mask_id}")
    if len(tok) > vocab:
        raise ValueError(f"the tokenizer has {len(tok)} tokens but the model's vocabulary has only {vocab}")
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if max_pos is not None and seq_len > max_pos:
        raise ValueError(f"seq_len {seq_len} exceeds the model's max_position_embeddings {max_pos}")


def build_text_data(dargs: DataArguments, tok_override: PreTrainedTokenizerBase | None = None, seed: int = 0):
    """(tokenizer, train, validation) — packed, ready for ``MDMCollator``."""
    corpus = load_text_corpus(dargs.dataset)
    if dargs.max_train_documents:
        corpus["train"] = corpus["train"].select(range(min(len(corpus["train"]), dargs.max_train_documents)))
    if tok_override is not None:
        tok = tok_override
    else:
        tok = load_tokenizer(dargs.tokenizer, corpus=corpus["train"]["text"], vocab_size=dargs.bpe_vocab_size)
    train = pack_dataset(corpus["train"], tok, dargs.seq_len, random_length_ratio=dargs.random_length_ratio, seed=seed)
    val = pack_dataset(corpus["validation"], tok, dargs.seq_len, keep_tail="if_short")
    if dargs.max_eval_sequences:
        val = val.select(range(min(len(val), dargs.max_eval_sequences)))
    return tok, train, val


def run_fingerprint(margs: ModelArguments, dargs: DataArguments, diff: DiffusionArguments) -> str:
    """What makes two runs "the same run" for resuming: model shape, data and objective."""
    keep = {k: v for k, v in asdict(margs).items() if k != "attn_implementation"}
    blob = json.dumps(
        {"model": keep, "data": {k: v for k, v in asdict(dargs).items() if k != "max_eval_sequences"},
         "diffusion": {k: v for k, v in asdict(diff).items() if k not in ("eval_num_samples", "sample_on_end")}},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
