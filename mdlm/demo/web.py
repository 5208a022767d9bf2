"""The Gradio web demo: a text tab streaming the token canvas step by step (new tokens highlighted, [MASK]
as ░) and an image tab showing the image grid emerging. One generation at a time (``concurrency_limit=1``)
with a bounded queue; a request past the limits gets an error message, never a crash."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo talks to its page only
import gradio as gr  # noqa: E402

from .conversation import has_chat_template  # noqa: E402
from .handlers import UNCONDITIONAL, image_updates, text_updates  # noqa: E402
from .limits import Limits  # noqa: E402
from .models import DemoModels  # noqa: E402
from .stream import CACHES, SCHEDULES, STRATEGIES, ui_defaults  # noqa: E402

COLORS = {"new": "#34d399", "masked": "#d1d5db"}
INTRO = ("Masked diffusion decodes by **unmasking**: every position starts as [MASK] (░) and each step commits "
         "the tokens the model is most confident about. Green = committed by this step.")


def _user_errors(fn: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """Bad requests (ValueError, incl. the limits) become a Gradio error message instead of a traceback."""

    def run(*args):
        try:
            yield from fn(*args)
        except ValueError as e:
            raise gr.Error(str(e)) from None

    run.__name__ = fn.__name__
    return run


def _text_tab(models: DemoModels, limits: Limits, slow_motion: float) -> None:
    d = ui_defaults(models.text.defaults) if models.text else {}
    chat = bool(models.text and has_chat_template(models.text.tokenizer))
    with gr.Row():
        with gr.Column(scale=1):
            prompt = gr.Textbox(label="prompt", lines=3, max_length=limits.max_prompt_chars, elem_id="text-prompt")
            use_chat = gr.Checkbox(value=chat, label="wrap in the chat format")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="text-run")
                stop = gr.Button("Stop", elem_id="text-stop")
            gen = gr.Slider(1, limits.max_gen_length, value=min(int(d.get("gen_length", 64)), limits.max_gen_length),
                            step=1, label="answer length (tokens)", elem_id="text-length")
            steps = gr.Slider(1, limits.max_steps, value=min(int(d.get("steps", 32)), limits.max_steps), step=1,
                              label="steps", elem_id="text-steps")
            block = gr.Number(value=d.get("block_length", 0), precision=0, label="block length (0 = one block)")
            sched = d.get("schedule", "even")
            schedule = gr.Dropdown(sorted({*SCHEDULES, sched}), value=sched, label="schedule")
            strategy = gr.Dropdown(list(STRATEGIES), value=d.get("strategy", STRATEGIES[0]), label="strategy",
                                   elem_id="text-strategy")
            threshold = gr.Slider(0, 1, value=d.get("threshold", 0), step=0.05, label="threshold (0 = off)")
            cache = gr.Dropdown(list(CACHES), value=d.get("cache", "none"), label="KV cache")
            temperature = gr.Slider(0, 2, value=float(d.get("temperature", 0.0)), step=0.05, label="temperature",
                                    elem_id="text-temperature")
            seed = gr.Number(value=0, precision=0, label="seed", elem_id="text-seed")
            delay = gr.Slider(0, limits.max_delay_s, value=slow_motion, step=0.05, label="slow motion (s per step)")
        with gr.Column(scale=2):
            canvas = gr.HighlightedText(label="canvas", color_map=COLORS, show_inline_category=False,
                                        combine_adjacent=False, elem_id="text-canvas")
            status = gr.Markdown(elem_id="text-status")
            final = gr.Textbox(label="final text", lines=3, elem_id="text-final")
    event = run.click(_user_errors(lambda *a: text_updates(models, limits, *a)),
                      [prompt, use_chat, gen, steps, block, schedule, strategy, threshold, cache, temperature, seed, delay],
                      [canvas, status, final], api_name="generate_text", concurrency_limit=1,
                      concurrency_id="sampler")
    stop.click(None, cancels=[event])


def _image_tab(models: DemoModels, limits: Limits, slow_motion: float) -> None:
    b = models.image
    names = [UNCONDITIONAL, *(b.info.class_names if b else [])]
    d = ui_defaults(b.loaded.defaults) if b else {}
    with gr.Row():
        with gr.Column(scale=1):
            cls = gr.Dropdown(names, value=names[1] if len(names) > 1 else names[0], label="class")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="image-run")
                stop = gr.Button("Stop", elem_id="image-stop")
            num = gr.Slider(1, limits.max_images, value=min(8, limits.max_images), step=1, label="images")
            steps = gr.Slider(1, limits.max_image_steps, value=min(int(d.get("steps", 8)), limits.max_image_steps),
                              step=1, label="steps")
            scale = gr.Slider(0, limits.max_guidance, value=float(d.get("cfg_scale", 0.0)), step=0.5,
                              label="guidance scale")
            seed = gr.Number(value=0, precision=0, label="seed")
            delay = gr.Slider(0, limits.max_delay_s, value=slow_motion, step=0.05, label="slow motion (s per step)")
        with gr.Column(scale=2):
            canvas = gr.Image(label="canvas (blue = masked)", type="numpy", elem_id="image-canvas")
            status = gr.Markdown(elem_id="image-status")
            final = gr.Image(label="final grid", type="numpy", elem_id="image-final")
    event = run.click(_user_errors(lambda *a: image_updates(models, limits, *a)), [cls, num, steps, scale, seed, delay],
                      [canvas, status, final], api_name="generate_images", concurrency_limit=1,
                      concurrency_id="sampler")
    stop.click(None, cancels=[event])


def build_app(models: DemoModels, limits: Limits | None = None, slow_motion: float = 0.0) -> gr.Blocks:
    """The demo's Blocks (queue set up); ``.launch(server_name="127.0.0.1")`` serves it. ``slow_motion``: the
    default pause between shown steps (s), for watching a fast model."""
    limits = limits or Limits()
    if not 0.0 <= slow_motion <= limits.max_delay_s:
        raise ValueError(f"slow motion must be between 0 and {limits.max_delay_s} s per step, got {slow_motion}")
    with gr.Blocks(title="mdlm — watch it think", analytics_enabled=False) as app:
        gr.Markdown(f"# mdlm — watch it think\n{INTRO}")
        with gr.Tab("Text", id="text"):
            if models.text is None:
                gr.Markdown("No text model loaded: start with `--model TEXT_CHECKPOINT`.")
            _text_tab(models, limits, slow_motion)
        with gr.Tab("Image", id="image"):
            if models.image is None:
                gr.Markdown("No image model loaded: start with `--model IMAGE_CHECKPOINT`.")
            _image_tab(models, limits, slow_motion)
    app.queue(max_size=limits.queue_size, default_concurrency_limit=1)
    return app
