"""Load a pretrained causal LM (HF dir or GGUF file) and turn it into a masked-diffusion LM.

    lm, tok = load_causal_lm("path/to/dir")                           # any AutoModelForCausalLM checkpoint
    lm, tok = load_causal_lm(dir, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")   # needs the `gguf` package
    model, tok = to_masked_diffusion(lm, tok, logit_alignment="dream", shift_token="<|endoftext|>")

[MASK] handling: the tokenizer's own mask token is used when it has one; otherwise ``mask_token`` is added. Its id
must fit the embedding: a model whose embedding has spare rows beyond the tokenizer (Qwen2, padded GPT-2 models)
takes it without resizing; otherwise the embedding grows by one row (``allow_resize``; else "no room for [MASK]").
A new row starts at the mean of the real token embeddings (in-distribution for the first layer; cf. the mean
initialisation transformers uses for new tokens), and so does its LM-head row when the head is untied (the loss
never lets the model predict [MASK]).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

from ..modeling.causal_backbone import CausalBackboneConfig, CausalBackboneForMaskedLM

DEFAULT_MASK_TOKEN = "<|mdm_mask|>"


def _check_source(path: str, gguf_file: str | None) -> None:
    if not os.path.isdir(path):
        raise ValueError(f"source model {path!r} is not a local directory (hub names cannot be downloaded here)")
    if gguf_file is not None:
        if not os.path.isfile(os.path.join(path, gguf_file)):
            raise ValueError(f"GGUF file {gguf_file!r} not found in {path!r}")
        if importlib.util.find_spec("gguf") is None:
            raise ValueError(f"loading the GGUF file {gguf_file!r} needs the 'gguf' package: pip install gguf")


def load_causal_lm(path: str, gguf_file: str | None = None, dtype: torch.dtype | None = None,
                   attn_implementation: str | None = "sdpa") -> tuple[PreTrainedModel, Any]:
    """(causal LM, tokenizer) from a local HF dir, or a GGUF file in it (de-quantised by transformers).
    ValueError (one line) for a missing dir/file, a GGUF without ``gguf`` installed, or a model type with no
    causal-LM head."""
    _check_source(path, gguf_file)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    config = AutoConfig.from_pretrained(path, **extra)
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ValueError(f"{path!r} is a {config.model_type!r} model, which has no causal-LM head "
                         "(AutoModelForCausalLM does not know it); pass a decoder-only LM such as Llama, Qwen2 or GPT-2")
    kwargs: dict[str, Any] = dict(extra)
    if dtype is not None:
        kwargs["dtype"] = dtype
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    lm = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    tok = AutoTokenizer.from_pretrained(path, **extra)
    return lm, tok


def _token_id(tok, token: str | None, what: str) -> int | None:
    if token is None:
        return None
    tid = tok.convert_tokens_to_ids(token)
    if not isinstance(tid, int) or tok.convert_ids_to_tokens(tid) != token:
        raise ValueError(f"{what} {token!r} is not a token of the tokenizer")
    return tid


@torch.no_grad()
def add_mask_token(lm: PreTrainedModel, tok, mask_token: str = DEFAULT_MASK_TOKEN, allow_resize: bool = True) -> int:
    """Give ``tok`` a [MASK] token and ``lm`` an embedding row for it (see the module docstring). Returns its id."""
    n_before = len(tok)
    if tok.mask_token is None:
        tok.add_special_tokens({"mask_token": mask_token})
    mask_id = tok.mask_token_id
    if mask_id is None:
        raise ValueError(f"the tokenizer refused the mask token {mask_token!r}")
    emb = lm.get_input_embeddings()
    rows = emb.num_embeddings
    if mask_id >= rows:
        if not allow_resize:
            raise ValueError(f"no room for [MASK]: the tokenizer needs id {mask_id} but the embedding has {rows} rows "
                             "and resizing is off (allow the resize, or pick a spare token as mask_token)")
        lm.resize_token_embeddings(mask_id + 1, mean_resizing=False)
        emb = lm.get_input_embeddings()
    if mask_id >= n_before or mask_id >= len(tok) - 1:  # a new token: mean initialisation
        real = emb.weight[: min(n_before, rows)]  # (V0, H)
        emb.weight[mask_id] = real.float().mean(0).to(emb.weight.dtype)
        head = lm.get_output_embeddings()
        if head is not None and head.weight is not emb.weight and head.weight.shape[0] > mask_id:
            head.weight[mask_id] = head.weight[: min(n_before, rows)].float().mean(0).to(head.weight.dtype)
    return mask_id


def to_masked_diffusion(lm: PreTrainedModel, tok, *, logit_alignment: str = "dream", shift_token: str | None = None,
                        mask_token: str = DEFAULT_MASK_TOKEN, allow_resize: bool = True) -> tuple[CausalBackboneForMaskedLM, Any]:
    """Wrap a causal LM as a bidirectional masked-diffusion denoiser (``CausalBackboneForMaskedLM``), adding [MASK].
    ``shift_token`` (Dream alignment only): the separator put before token 0; default the tokenizer's BOS, else EOS."""
    if not isinstance(lm, PreTrainedModel) or lm.get_output_embeddings() is None:
        raise ValueError(f"{type(lm).__name__} has no LM head; AR → MDM adaptation needs a causal LM with one")
    mask_id = add_mask_token(lm, tok, mask_token, allow_resize)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    shift_id = None
    if logit_alignment == "dream":
        shift_id = _token_id(tok, shift_token, "shift_token") if shift_token else (tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id)
        if shift_id is None:
            raise ValueError("logit_alignment 'dream' needs a separator token: the tokenizer has no BOS/EOS; pass shift_token")
    impl = lm.config._attn_implementation  # read before the outer config resets it (see CausalBackboneForMaskedLM)
    cfg = CausalBackboneConfig(backbone_config=lm.config, logit_alignment=logit_alignment, mask_token_id=mask_id,
                               shift_token_id=shift_id, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                               bos_token_id=tok.bos_token_id)
    cfg._attn_implementation = impl
    model = CausalBackboneForMaskedLM(cfg, lm=lm)
    return model, tok
