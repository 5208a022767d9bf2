"""A multi-turn conversation rendered as one prompt, trimmed to the model's context.

Rendering is the SFT data's (:func:`mdlm.data.sft.render_prompt`), so a chat prompt is exactly what an
instruction-tuned checkpoint saw in training: the tokenizer's chat template when it has one, else the
plain ``<|user|>`` / ``<|assistant|>`` turns that ``recipes/sft_lora.py`` trains on (with BOS text in front
where SFT encoding prepends BOS, as :func:`mdlm.data.sft.format_prompt` does for one turn).

Trimming: the prompt plus the answer length must fit in the context; the oldest (user, assistant)
turns are dropped until it does, and the caller is told how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.sft import format_prompt, render_prompt


class ContextError(ValueError):
    """The newest message alone does not fit in the context."""


@dataclass
class Conversation:
    system: str | None = None
    turns: list[tuple[str, str]] = field(default_factory=list)  # (user, assistant), oldest first

    def messages(self, user: str, keep_from: int = 0) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        for u, a in self.turns[keep_from:]:
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        return msgs + [{"role": "user", "content": user}]


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render(tokenizer, messages: list[dict[str, str]]) -> str:
    """Prompt text for ``messages`` (ending with the user turn to answer), ending with the assistant header."""
    full, one = format_prompt(tokenizer, ""), render_prompt(tokenizer, [{"role": "user", "content": ""}])
    bos_text = full[: len(full) - len(one)]  # what format_prompt puts before the turns (BOS text or "")
    return bos_text + render_prompt(tokenizer, messages)


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


def fit_prompt(tokenizer, conv: Conversation, user: str, gen_length: int, context: int | None) -> tuple[str, int]:
    """The prompt for ``user`` after ``conv`` that leaves ``gen_length`` positions in ``context`` tokens,
    and how many of the oldest turns were dropped for it. ContextError if even no history is too long."""
    for drop in range(len(conv.turns) + 1):
        prompt = render(tokenizer, conv.messages(user, keep_from=drop))
        size = n_tokens(tokenizer, prompt)
        if context is None or size + gen_length <= context:
            return prompt, drop
    raise ContextError(f"this message is {size} tokens with the chat format; with an answer of {gen_length} tokens "
                       f"that is {size + gen_length}, more than the model's context of {context}: shorten it "
                       f"(or lower the answer length)")
