"""The demo's one adapter to the sampler: a sampler run as a stream of per-step canvas snapshots.

Everything else in :mod:`mdlm.demo` sees only :class:`Frame` / :class:`Done` (plain tensors and numbers),
never the sampler's callback API, config class or pipelines. When the sampler's API changes, this is the
one module to adapt.

How: the sampler runs in a worker thread; its per-step callback (``callback(step, canvas, info)`` of
:mod:`mdlm.sampling.callbacks`) puts a :class:`Frame` on a queue, and :func:`stream_run` yields them as they
come. Stopping (Ctrl-C in the terminal, a closed browser tab in the web demo) sets an event; the callback
raises :class:`Stopped` at the next step, which ends the sampler run, and the worker is joined.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from ..pipelines.image import ImageModelInfo, generate_images
from ..pipelines.text import build_text_canvas, generate_text, sampler_config_from
from ..sampling import (
    CACHE_MODES,
    UNMASKING,
    MDLMGenerationConfig,
    add_generation_arguments,
    given_settings,
)
from ..schedules import SCHEDULE_NAMES

Tensor = torch.Tensor
R = TypeVar("R")


class Stopped(Exception):
    """Raised inside the sampler run (from its callback) when the consumer asked to stop."""


@dataclass(frozen=True)
class Frame:
    """The canvas after one sampler step.

    Attributes:
        step: steps done, 1-based. ``max_steps``: the step budget (a threshold may end earlier).
        canvas: (B, L) long on the CPU, [MASK] where still masked.
        committed: (B, L) bool, positions unmasked by this step.
        nfe: model evaluations so far. ``elapsed``: seconds since the run started.
    """

    step: int
    max_steps: int
    canvas: Tensor
    committed: Tensor
    nfe: int
    elapsed: float


@dataclass(frozen=True)
class Done(Generic[R]):
    """The end of a run: the pipeline's result, the total step count / NFE and the wall time."""

    result: R
    steps: int
    nfe: int
    elapsed: float


def stream_run(run: Callable[[Callable], R], stop: threading.Event | None = None,
               poll_s: float = 0.05) -> Iterator[Frame | Done[R]]:
    """Yield a :class:`Frame` per sampler step of ``run(callback)`` and then one :class:`Done`.

    ``run`` calls a sampler pipeline with the given per-step callback and returns its result. An
    exception of the run is re-raised here. Closing the iterator (or an exception such as
    KeyboardInterrupt while waiting) stops the run at its next step and joins the worker; setting
    ``stop`` does the same and the stream then ends with :class:`Stopped`.
    """
    stop = stop or threading.Event()
    frames: queue.Queue = queue.Queue()
    t0 = time.perf_counter()

    def callback(step: int, canvas: Tensor, info: Any) -> None:
        if stop.is_set():
            raise Stopped("stopped")
        frames.put(Frame(step + 1, int(info.max_steps), canvas.detach().cpu(), info.committed.detach().cpu(),
                         int(info.nfe), time.perf_counter() - t0))

    def work() -> None:
        try:
            result = run(callback)
            frames.put(("done", result, time.perf_counter() - t0))  # the run's own time, not the consumer's
        except BaseException as e:  # noqa: BLE001 - every error (Stopped included) is re-raised in the consumer
            frames.put(("error", e, 0.0))

    worker = threading.Thread(target=work, name="mdlm-demo-sampler", daemon=True)
    worker.start()
    try:
        last: Frame | None = None
        while True:
            try:
                item = frames.get(timeout=poll_s)
            except queue.Empty:
                continue
            if isinstance(item, Frame):
                last = item
                yield item
                continue
            kind, value, elapsed = item
            if kind == "error":
                raise value
            out = value[1] if isinstance(value, tuple) else value
            nfe = int(getattr(out, "nfe", last.nfe if last else 0))
            yield Done(value, last.step if last else 0, nfe, elapsed)
            return
    finally:
        stop.set()
        worker.join()


# ---------------------------------------------------------------------------------------------------
# the two pipelines


# the demo's names for the sampler's settings → the sampler's names
_UI_NAMES = {"gen_length": "max_new_tokens", "steps": "steps", "block_length": "block_length",
             "schedule": "schedule", "strategy": "unmasking", "threshold": "threshold", "temperature": "temperature",
             "cache": "cache_implementation", "cfg_scale": "guidance_scale"}
# the choices a UI offers for the sampler's knobs
SCHEDULES = ("even", *(n for n in SCHEDULE_NAMES if "<" not in n))
STRATEGIES = tuple(UNMASKING)
CACHES = tuple(CACHE_MODES)


def ui_defaults(defaults: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's stored sampler defaults under the names the demo's controls use (missing = not set):
    gen_length, steps, block_length, schedule, strategy, threshold, cache, temperature, cfg_scale."""
    return {ui: defaults[key] for ui, key in _UI_NAMES.items() if defaults.get(key) is not None}


def sampler_config(defaults: dict[str, Any], off: tuple[str, ...] = (),
                   **overrides: Any) -> tuple[MDLMGenerationConfig, int]:
    """The sampler config from a checkpoint's generation defaults plus overrides (None = keep the default), and
    the generation length; the settings named in ``off`` are switched off (None) whatever the checkpoint says.
    Overrides and ``off`` may use the demo's names (``strategy``) or the sampler's. ValueError names a bad value."""
    off = tuple(_UI_NAMES.get(k, k) for k in off)
    overrides = {_UI_NAMES.get(k, k): v for k, v in overrides.items()}
    return sampler_config_from({k: v for k, v in defaults.items() if k not in off}, overrides)


def add_sampler_flags(group) -> list[str]:
    """The sampler's own command-line flags (the same as ``recipes/generate.py``'s) on an argparse group; returns
    the names to pass to :func:`given_sampler_flags`. ``--chat`` / ``--return-history`` are the chat's business."""
    return add_generation_arguments(group, exclude=("chat", "return_history"))


def given_sampler_flags(namespace, names: list[str]) -> dict[str, Any]:
    """The sampler flags the user gave (overrides for :func:`sampler_config`)."""
    return given_settings(namespace, names)


def prompt_length(tokenizer, prompt: str) -> int:
    """Tokens of an already formatted prompt, as the text pipeline encodes it."""
    canvas, _, _ = build_text_canvas(tokenizer, [prompt], 1, None)
    return canvas.shape[1] - 1


def stream_text(model: torch.nn.Module, tokenizer, prompt: str, config: MDLMGenerationConfig, gen_length: int, *,
                seed: int = 0, stop: threading.Event | None = None) -> Iterator[Frame | Done[tuple[list[str], Any]]]:
    """One prompt (already chat-formatted if wanted; "" = unconditional) → frames of its (1, P + gen_length)
    canvas; ``Done.result`` is ``(texts, sampler output)`` exactly as :func:`generate_text` returns them."""

    def run(cb: Callable) -> tuple[list[str], Any]:
        return generate_text(model, tokenizer, [prompt], config, gen_length, seed=seed, callback=cb)

    return stream_run(run, stop)


def stream_images(model: torch.nn.Module, info: ImageModelInfo, vq, class_id: int | None, num_samples: int,
                  config: MDLMGenerationConfig, *, seed: int = 0,
                  stop: threading.Event | None = None) -> Iterator[Frame | Done]:
    """``num_samples`` images of class ``class_id`` (None = unconditional) → frames of the (B, 1 + h·w)
    token canvas; ``Done.result`` is the :class:`~mdlm.pipelines.image.ImageSamples`."""
    device = next(model.parameters()).device

    def run(cb: Callable):
        gen = torch.Generator(device=device).manual_seed(seed)
        ids = None if class_id is None else [class_id]
        return generate_images(model, info.layout, vq, ids, num_samples, config, gen, callback=cb, device=device)

    return stream_run(run, stop)
