"""Measured generation defaults: after training, decode a few prompts with the checkpoint's default
(greedy, confidence-ordered, LLaDA-style) and, when that output is degenerate, store the first
sampling setting whose output is not.

Greedy confidence-ordered decoding is the right default for a well-trained model, but on a model
trained for a few CPU minutes the most confident token at every position is a newline, so greedy
decoding prints the prompt and blank lines. Users should see text from the first command.
"""

from __future__ import annotations

import re
from typing import Any

import torch

_WORD = re.compile(r"\S*[^\W\d_]\S*")  # a whitespace-separated word holding at least one letter

# "ROMEO:" is the prompt of the README's quickstart; "" is unconditional generation
DEFAULT_PROMPTS: tuple[str, ...] = ("", "The", "ROMEO:")
# tried in this order when greedy decoding is degenerate: the closest to greedy first
FALLBACKS: tuple[dict[str, Any], ...] = (
    {"temperature": 0.8},  # confidence order, sampled tokens
    {"temperature": 1.0, "remasking": "random"},  # the ancestral MDM sampler (random order)
)


def is_degenerate(text: str, min_distinct_words: int = 3) -> bool:
    """Fewer than ``min_distinct_words`` distinct words that hold a letter: blank (also an answer cut at
    a first EOS), punctuation between newlines ("\\n:\\n.\\nAnd\\n,"), or one word repeated ("the the")."""
    return len(set(_WORD.findall(text))) < min_distinct_words


def degenerate_count(
    model, tokenizer, defaults: dict, prompts: tuple[str, ...], seed: int, chat: bool = False, min_distinct_words: int = 3
) -> int:
    """How many of ``prompts`` the sampler setting ``defaults`` answers with degenerate text (cut at EOS,
    as users see it: an answer that starts with EOS is empty)."""
    from ..pipelines.text import generate_text, sampler_config_from

    config, gen_length = sampler_config_from(defaults, {})
    texts, _ = generate_text(model, tokenizer, list(prompts), config, gen_length, seed=seed, chat=chat)
    return sum(is_degenerate(t, min_distinct_words) for t in texts)


def describe(setting: dict) -> str:
    """'greedy, confidence order' / 'temperature 0.8, random order' of a sampler setting (old or new key names)."""
    from ..sampling import MDLMGenerationConfig

    c = MDLMGenerationConfig.from_dict({k: v for k, v in setting.items() if not k.endswith("token_id")})
    order = "random order" if c.confidence == "random" else "confidence order"
    return f"{'greedy' if not c.temperature else f'temperature {c.temperature:g}'}, {order}"


def checked_generation_defaults(
    model: torch.nn.Module,
    tokenizer,
    defaults: dict[str, Any],
    *,
    prompts: tuple[str, ...] = DEFAULT_PROMPTS,
    seed: int = 0,
    world_size: int = 1,
    chat: bool = False,
    min_distinct_words: int = 3,
) -> dict[str, Any]:
    """``defaults`` if their decoding of ``prompts`` is not degenerate on most prompts, else ``defaults``
    updated with the first of :data:`FALLBACKS` that is (or the least degenerate one). Prints what was
    measured and chosen. Skipped (defaults returned as they are) for causal models and multi-process runs.
    ``chat``: prompts go through the chat template (instruction-tuned adapters; ``min_distinct_words=1``
    there, since a one-word answer can be right: only blank answers count)."""
    if world_size > 1 or getattr(getattr(model, "config", None), "is_causal", False):
        return defaults
    was = model.training
    model.eval()
    try:
        bad = degenerate_count(model, tokenizer, defaults, prompts, seed, chat, min_distinct_words)
        chosen, best = defaults, bad
        if 2 * bad > len(prompts):
            for fb in FALLBACKS:
                n = degenerate_count(model, tokenizer, {**defaults, **fb}, prompts, seed, chat, min_distinct_words)
                if n < best:
                    chosen, best = {**defaults, **fb}, n
                if 2 * n <= len(prompts):
                    break
    finally:
        model.train(was)
    n = len(prompts)
    if chosen is defaults:
        print(f"generation defaults: {describe(defaults)} (degenerate on {bad}/{n} test prompts)", flush=True)
    else:
        print(
            f"generation defaults: {describe(defaults)} decoding is degenerate (blank, punctuation or one repeated word) on "
            f"{bad}/{n} test prompts; saved {describe(chosen)} instead ({best}/{n} degenerate) — "
            "generate.py --temperature 0 --confidence prob restores greedy",
            flush=True,
        )
    return chosen


def main(argv: list[str] | None = None) -> int:
    """``python -m mdlm.training.generation_check DIR [--save]``: measure a saved checkpoint's decoding
    defaults the way training does; ``--save`` rewrites its generation_config.json with the choice."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from ..cli import ArgumentParser
    from ..generation_defaults import load_generation_defaults, save_generation_defaults

    p = ArgumentParser(prog="python -m mdlm.training.generation_check", description=main.__doc__.split("\n")[0])
    p.add_argument("model", help="a text checkpoint dir with generation_config.json")
    p.add_argument("--save", action="store_true", help="write the chosen defaults to its generation_config.json")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    defaults = load_generation_defaults(a.model)
    if not defaults:
        raise ValueError(f"{a.model} has no generation_config.json")
    greedy = {**defaults, "temperature": 0.0, "remasking": "low_confidence"}  # start from the recipe's default
    model = AutoModelForMaskedLM.from_pretrained(a.model, use_safetensors=True)
    chosen = checked_generation_defaults(model, AutoTokenizer.from_pretrained(a.model), greedy, seed=a.seed)
    if a.save:
        save_generation_defaults(a.model, chosen)
        print(f"saved to {a.model}/generation_config.json")
    return 0


if __name__ == "__main__":
    from ..cli import run_cli

    run_cli(main)()
