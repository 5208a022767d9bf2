"""The checkpoints a demo serves: at most one text model (optionally with a LoRA adapter) and one image model,
each told apart by its config (an image checkpoint carries ``image_layout``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ..cli import UserError
from ..pipelines.image import ImageModelInfo, image_model_info, load_image_vq
from ..pipelines.loading import Loaded, load_for_generation


@dataclass
class ImageBundle:
    loaded: Loaded
    info: ImageModelInfo
    vq: Any


@dataclass
class DemoModels:
    text: Loaded | None = None
    image: ImageBundle | None = None

    @property
    def context(self) -> int | None:
        return getattr(self.text.model.config, "max_position_embeddings", None) if self.text else None


def is_image_checkpoint(path: str) -> bool:
    """Whether ``path`` (a checkpoint dir, or an adapter dir: its base is looked at) holds an image model, from
    its config alone (no weights loaded)."""
    from transformers import AutoConfig

    adapter_cfg = os.path.join(path, "adapter_config.json")
    if os.path.isfile(adapter_cfg):
        with open(adapter_cfg, encoding="utf-8") as f:
            path = json.load(f).get("base_model_name_or_path") or path
    if not os.path.isfile(os.path.join(path, "config.json")):
        return False  # load_for_generation names the problem
    return bool(getattr(AutoConfig.from_pretrained(path), "image_layout", None))


def load_demo_models(paths: list[str], adapter: str | None = None, device: str = "cpu") -> DemoModels:
    """Load each checkpoint / adapter dir of ``paths`` (``adapter`` goes on the text model). UserError on
    two models of one kind, an adapter without a text model, or a text model without tokenizer files."""
    models = DemoModels()
    for path in paths:
        if is_image_checkpoint(path):
            if models.image is not None:
                raise UserError(f"two image checkpoints given ({models.image.loaded.model_dir}, {path}); "
                                "the demo serves one")
            loaded = load_for_generation(path, device=device)
            info = image_model_info(loaded.model.config)
            models.image = ImageBundle(loaded, info, load_image_vq(loaded.base_dir, info, device=device))
            continue
        if models.text is not None:
            raise UserError(f"two text checkpoints given ({models.text.model_dir}, {path}); the demo serves one")
        models.text = load_for_generation(path, adapter, device=device)
        if models.text.tokenizer is None:
            raise UserError(f"{path} has no tokenizer files; it is not a text checkpoint")
    if adapter and models.text is None:
        raise UserError("--adapter needs a text checkpoint among --model")
    if models.text is None and models.image is None:
        raise UserError("give at least one --model (a text or an image checkpoint)")
    return models
