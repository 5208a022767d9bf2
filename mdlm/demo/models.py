"""The checkpoints a demo serves: at most one text model (optionally with a LoRA adapter) and one image model,
each told apart by its config (an image checkpoint carries ``image_layout``)."""

from __future__ import annotations

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


def load_demo_models(paths: list[str], adapter: str | None = None, device: str = "cpu") -> DemoModels:
    """Load each checkpoint / adapter dir of ``paths`` (``adapter`` goes on the text model). UserError on
    two models of one kind, an adapter without a text model, or a text model without tokenizer files."""
    models = DemoModels()
    for path in paths:
        probe = load_for_generation(path, device=device)
        if getattr(probe.model.config, "image_layout", None):
            if models.image is not None:
                raise UserError(f"two image checkpoints given ({models.image.loaded.model_dir}, {path}); the demo serves one")
            info = image_model_info(probe.model.config)
            models.image = ImageBundle(probe, info, load_image_vq(probe.base_dir, info, device=device))
            continue
        if models.text is not None:
            raise UserError(f"two text checkpoints given ({models.text.model_dir}, {path}); the demo serves one")
        if probe.tokenizer is None:
            raise UserError(f"{path} has no tokenizer files; it is not a text checkpoint")
        models.text = load_for_generation(path, adapter, device=device) if adapter else probe
    if adapter and models.text is None:
        raise UserError("--adapter needs a text checkpoint among --model")
    if models.text is None and models.image is None:
        raise UserError("give at least one --model (a text or an image checkpoint)")
    return models
