"""What one web-demo request may ask for. A request past a limit gets one clear message (the web layer
shows it as an error toast), never a crash or a long stall of the shared queue."""

from __future__ import annotations

from dataclasses import dataclass


class LimitError(ValueError):
    """A request outside the demo's limits or with an invalid value; the message names the field."""


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int = 4000
    max_gen_length: int = 512
    max_steps: int = 512
    max_images: int = 16
    max_image_steps: int = 64
    max_guidance: float = 20.0
    max_delay_s: float = 0.5  # "slow motion": pause between shown steps
    queue_size: int = 16  # requests waiting beyond this are refused by the queue


def _int_in(name: str, value, lo: int, hi: int) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise LimitError(f"{name} must be a whole number, got {value!r}") from None
    if v != value and not (isinstance(value, float) and value.is_integer()):
        raise LimitError(f"{name} must be a whole number, got {value!r}")
    if not lo <= v <= hi:
        raise LimitError(f"{name} must be between {lo} and {hi}, got {v}")
    return v


def check_text_request(limits: Limits, prompt: str, gen_length, steps, block_length, threshold) -> dict:
    """Validated sampler overrides for a text request: gen_length, steps, block_length (0 = one block),
    threshold (0 = off). LimitError names the first bad field."""
    if prompt is None or len(prompt) > limits.max_prompt_chars:
        raise LimitError(f"the prompt is {len(prompt or '')} characters; the limit is {limits.max_prompt_chars}")
    g = _int_in("answer length", gen_length, 1, limits.max_gen_length)
    s = _int_in("steps", steps, 1, limits.max_steps)
    b = _int_in("block length", block_length or 0, 0, g)
    t = float(threshold or 0.0)
    if not 0.0 <= t <= 1.0:
        raise LimitError(f"threshold must be in [0, 1] (0 = off), got {t}")
    return {"gen_length": g, "steps": s, "block_length": b or None, "threshold": t or None}


def check_delay(limits: Limits, delay) -> float:
    d = float(delay or 0.0)
    if not 0.0 <= d <= limits.max_delay_s:
        raise LimitError(f"slow motion must be between 0 and {limits.max_delay_s} s per step, got {d}")
    return d


def check_image_request(limits: Limits, num_samples, steps, guidance) -> dict:
    """Validated image request: num_samples, steps, cfg_scale. LimitError names the first bad field."""
    n = _int_in("number of images", num_samples, 1, limits.max_images)
    s = _int_in("steps", steps, 1, limits.max_image_steps)
    g = float(guidance or 0.0)
    if not 0.0 <= g <= limits.max_guidance:
        raise LimitError(f"guidance scale must be between 0 and {limits.max_guidance}, got {g}")
    return {"num_samples": n, "steps": s, "cfg_scale": g}
