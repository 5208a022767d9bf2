"""``generation_config.json`` of a checkpoint: its :class:`~mdlm.sampling.config.MDLMGenerationConfig`.

``save_generation_defaults(dir, dict)`` checks the settings (unknown keys are an error; the names written before
the sampler's rename are mapped) and writes them; ``load_generation_defaults(dir)`` gives the stored settings as a
dict of field names ({} without the file), ready for ``MDLMGenerationConfig.from_dict`` with overrides on top.
"""

from __future__ import annotations

from typing import Any

from .sampling.config import MDLMGenerationConfig, read_generation_dict


def save_generation_defaults(model_dir: str, defaults: dict[str, Any]) -> None:
    MDLMGenerationConfig.from_dict(defaults).save_pretrained(model_dir)


def load_generation_defaults(model_dir: str) -> dict[str, Any]:
    """The stored settings under the current field names (old checkpoints' names mapped), or {}."""
    stored = read_generation_dict(model_dir)
    return MDLMGenerationConfig.from_dict(stored).to_diff_dict() | _ids(stored) if stored else {}


def _ids(stored: dict[str, Any]) -> dict[str, Any]:
    """Special ids are kept even when they equal the defaults (None)."""
    return {k: v for k, v in stored.items() if k in ("mask_token_id", "eos_token_id", "pad_token_id")}
