"""The web demo's two requests as plain generators of UI values (no Gradio in here, so they are testable
alone): each checks the request against :class:`~mdlm.demo.limits.Limits`, streams the sampler through
:mod:`mdlm.demo.stream` and yields one update per step, the last one with the final result."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from .conversation import render
from .limits import Limits, check_delay, check_image_request, check_text_request
from .models import DemoModels
from .pictures import canvas_picture, images_picture
from .render import canvas_pieces, masked_count, to_highlighted
from .stream import Done, prompt_length, sampler_config, stream_images, stream_text

UNCONDITIONAL = "(unconditional)"


def _status(step: int, max_steps: int, nfe: int, masked: int, total: int, elapsed: float, done: bool) -> str:
    rate = (total - masked) / max(elapsed, 1e-9)
    head = f"**done** in {step} steps" if done else f"step **{step}/{max_steps}**"
    return f"{head} · NFE {nfe} · {masked}/{total} masked · {rate:.1f} tokens/s · {elapsed:.2f} s"


def text_updates(models: DemoModels, limits: Limits, prompt: str, chat: bool, gen_length, steps, block_length,
                 schedule: str, strategy: str, threshold, cache: str, temperature, seed, delay=0.0
                 ) -> Iterator[tuple[list, str, str]]:
    """Yield (highlighted canvas, status line, final text) per step; the final text is "" until the end.
    ``delay`` (slow motion) pauses between shown steps; the timings shown are the sampler's own."""
    if models.text is None:
        raise ValueError("no text model is loaded; start the demo with --model TEXT_CHECKPOINT")
    req = check_text_request(limits, prompt, gen_length, steps, block_length, threshold)
    delay = check_delay(limits, delay)
    tok, model = models.text.tokenizer, models.text.model
    text = render(tok, [{"role": "user", "content": prompt}]) if chat else prompt
    off = tuple(k for k in ("block_length", "threshold") if req[k] is None)  # "0 = off" beats the checkpoint
    config, g = sampler_config(models.text.defaults, off, schedule=schedule, strategy=strategy, cache=cache,
                               temperature=float(temperature), **req)
    P = prompt_length(tok, text)
    highlighted: list = []
    if models.context is not None and P + g > models.context:
        raise ValueError(f"the prompt is {P} tokens; with an answer of {g} tokens that is {P + g}, more than "
                         f"the model's context of {models.context}")
    for item in stream_text(model, tok, text, config, g, seed=int(seed)):
        if isinstance(item, Done):
            final = item.result[0][0]
            yield highlighted, _status(item.steps, item.steps, item.nfe, 0, g, item.elapsed, True), final
        else:
            pieces = canvas_pieces(tok, item.canvas[0, P:], item.committed[0, P:])
            highlighted = to_highlighted(pieces)
            yield highlighted, _status(item.step, item.max_steps, item.nfe, masked_count(pieces), g,
                                       item.elapsed, False), ""
            time.sleep(delay)


def image_updates(models: DemoModels, limits: Limits, class_name: str, num_samples, steps, guidance, seed,
                  delay=0.0) -> Iterator[tuple[np.ndarray, str, np.ndarray | None]]:
    """Yield (canvas picture, status line, final grid or None) per step (``delay``: as for text)."""
    if models.image is None:
        raise ValueError("no image model is loaded; start the demo with --model IMAGE_CHECKPOINT")
    b = models.image
    names = list(b.info.class_names)
    if class_name != UNCONDITIONAL and class_name not in names:
        raise ValueError(f"unknown class {class_name!r}; the model knows: {', '.join(names)}")
    class_id = None if class_name == UNCONDITIONAL else names.index(class_name)
    req = check_image_request(limits, num_samples, steps, guidance)
    delay = check_delay(limits, delay)
    config, _ = sampler_config(b.loaded.defaults, steps=req["steps"], cfg_scale=req["cfg_scale"])
    picture = None
    total = req["num_samples"] * b.info.latent_shape[0] * b.info.latent_shape[1]
    for item in stream_images(b.loaded.model, b.info, b.vq, class_id, req["num_samples"], config, seed=int(seed)):
        if isinstance(item, Done):
            yield picture, _status(item.steps, item.steps, item.nfe, 0, total, item.elapsed, True), \
                images_picture(item.result.images)
        else:
            picture = canvas_picture(b.vq, b.info.layout, item.canvas)
            masked = int((item.canvas[:, 1:] == b.info.layout.mask_id).sum())
            yield picture, _status(item.step, item.max_steps, item.nfe, masked, total, item.elapsed, False), None
            time.sleep(delay)
