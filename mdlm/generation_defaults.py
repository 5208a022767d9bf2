"""``generation_config.json`` of a checkpoint: the sampler's defaults and the special ids.

Stored as an HF ``GenerationConfig`` (so HF tools read it) whose extra field ``mdlm_sampler`` holds
the SamplerConfig fields; ``recipes/generate.py`` starts from these and applies its flags on top.
"""

from __future__ import annotations

import os
from typing import Any

from transformers import GenerationConfig


def save_generation_defaults(model_dir: str, defaults: dict[str, Any]) -> None:
    special = {k: defaults[k] for k in ("mask_token_id", "eos_token_id", "pad_token_id") if k in defaults}
    sampler = {k: v for k, v in defaults.items() if k not in special}
    GenerationConfig(**special, mdlm_sampler=sampler).save_pretrained(model_dir)


def load_generation_defaults(model_dir: str) -> dict[str, Any]:
    """The stored defaults (sampler fields + special ids), or {} if the checkpoint has none."""
    if not os.path.isfile(os.path.join(model_dir, "generation_config.json")):
        return {}
    gc = GenerationConfig.from_pretrained(model_dir)
    out = dict(getattr(gc, "mdlm_sampler", None) or {})
    for k in ("mask_token_id", "eos_token_id", "pad_token_id"):
        if getattr(gc, k, None) is not None:
            out[k] = getattr(gc, k)
    return out
