"""Load a checkpoint directory — a full model or a peft LoRA adapter — for generation."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, PreTrainedModel

from ..generation_defaults import load_generation_defaults
from ..weights import check_finite_model, check_weights_dir


@dataclass
class Loaded:
    model: torch.nn.Module
    tokenizer: Any | None
    defaults: dict[str, Any] = field(default_factory=dict)
    model_dir: str = ""
    base_dir: str = ""


def _is_adapter(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "adapter_config.json"))


def load_for_generation(path: str, adapter: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None,
                        merge_adapter: bool = False) -> Loaded:
    """``path`` is a checkpoint dir or an adapter dir (its base is read from adapter_config.json);
    ``adapter`` adds a LoRA adapter on top of ``path``. Weights come from safetensors only.
    ``merge_adapter``: merge the adapter into the base weights (in float32, then cast to ``dtype``) and return the
    plain model — the same function without the adapter's extra kernels per projection (faster decoding).

    Raises ValueError (one line for the user) for a missing dir, pickle-only weights (with how to convert
    them), a truncated / empty weight file, or weights holding NaN/inf (a diverged run)."""
    if not os.path.isdir(path):
        raise ValueError(f"model directory {path!r} does not exist")
    if _is_adapter(path):
        if adapter is not None:
            raise ValueError("pass either an adapter dir as --model or --adapter, not both")
        with open(os.path.join(path, "adapter_config.json"), encoding="utf-8") as f:
            base = json.load(f).get("base_model_name_or_path")
        if not base or not os.path.isdir(base):
            raise ValueError(f"adapter {path!r} names base model {base!r}, which is not a local directory")
        adapter, path = path, base
    check_weights_dir(path)
    if adapter:
        check_weights_dir(adapter, what="adapter", adapter=True)
    merge = bool(adapter) and merge_adapter
    kwargs = {"dtype": torch.float32 if merge else dtype} if dtype is not None else {}
    model: PreTrainedModel = AutoModelForMaskedLM.from_pretrained(path, use_safetensors=True, **kwargs)
    check_finite_model(model, path)
    tok_dir = adapter if adapter and os.path.isfile(os.path.join(adapter, "tokenizer_config.json")) else path
    tok = AutoTokenizer.from_pretrained(tok_dir) if os.path.isfile(os.path.join(tok_dir, "tokenizer_config.json")) else None
    defaults = load_generation_defaults(path)
    if adapter:
        from ..lora import load_adapter

        model = load_adapter(model, adapter, merge=merge)
        check_finite_model(model, adapter)
        defaults.update(load_generation_defaults(adapter))
    model.to(device=device, **({"dtype": dtype} if merge and dtype is not None else {})).eval()
    return Loaded(model, tok, defaults, model_dir=adapter or path, base_dir=path)
