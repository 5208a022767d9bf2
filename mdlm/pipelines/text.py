"""Prompted (or unconditional) text generation with the confidence sampler.

Canvas layout per row: ``[pad …][prompt][MASK × gen_length]`` — prompts are LEFT-padded so every row's
generated region ends at the same column and a padded batch gives the same text as one by one (the
model adapter skips padding in the position ids). Generated text is cut at the first EOS.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

from ..sampling import MDLMGenerationConfig, SampleOutput, generate, trim_at_eos


def build_text_canvas(
    tokenizer, prompts: list[str], gen_length: int, max_length: int | None, chat: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(canvas, attention_mask, prompt_mask), each (B, P + gen_length)."""
    if gen_length < 1:
        raise ValueError(f"gen_length must be ≥ 1, got {gen_length}")
    mask_id, pad_id = tokenizer.mask_token_id, tokenizer.pad_token_id
    if mask_id is None:
        raise ValueError("the tokenizer/model has no [MASK] token; masked-diffusion sampling needs one")
    if chat:
        from ..data.sft import format_prompt

        prompts = [format_prompt(tokenizer, p) for p in prompts]
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] if p else [] for p in prompts]
    P = max(len(x) for x in ids)
    if max_length is not None and P + gen_length > max_length:
        longest = max(range(len(ids)), key=lambda i: len(ids[i]))
        raise ValueError(
            f"prompt {longest + 1} has {len(ids[longest])} tokens; with gen_length {gen_length} that is "
            f"{len(ids[longest]) + gen_length}, more than the model's context of {max_length}"
        )
    B, L = len(ids), P + gen_length
    canvas = torch.full((B, L), pad_id if pad_id is not None else mask_id, dtype=torch.long)
    attn = torch.zeros(B, L, dtype=torch.long)
    prompt = torch.zeros(B, L, dtype=torch.bool)
    for i, x in enumerate(ids):  # ragged python lists → one tensor
        if x:
            canvas[i, P - len(x) : P] = torch.tensor(x)
            prompt[i, P - len(x) : P] = True
        attn[i, P - len(x) :] = 1
    canvas[:, P:] = mask_id
    return canvas, attn, prompt


@torch.no_grad()
def generate_text(
    model: torch.nn.Module,
    tokenizer,
    prompts: list[str],
    config: MDLMGenerationConfig,
    gen_length: int,
    *,
    seed: int = 0,
    chat: bool = False,
    callback: Callable | None = None,
    max_length: int | None = None,
) -> tuple[list[str], SampleOutput]:
    """Decode ``gen_length`` new tokens after each prompt ("" = unconditional). Returns the texts
    (cut at EOS, special tokens dropped) and the sampler output. Never emits [MASK], an id ≥ ``len(tokenizer)``
    (the LM head is padded wider) or, with ``config.suppress_pad``, the pad token. All rows are one batch: for
    many prompts use :func:`generate_text_batches`."""
    device = next(model.parameters()).device
    cfg = getattr(model, "config", None)
    max_length = max_length or getattr(cfg, "max_position_embeddings", None)
    canvas, attn, prompt = build_text_canvas(tokenizer, prompts, gen_length, max_length, chat or config.chat)
    canvas, attn, prompt = canvas.to(device), attn.to(device), prompt.to(device)
    pad = tokenizer.pad_token_id if config.suppress_pad else None
    suppress = [i for i in (pad,) if i is not None and i != tokenizer.eos_token_id]
    out = generate(
        model,
        canvas,
        mask_id=tokenizer.mask_token_id,
        config=config,
        attention_mask=attn,
        cond_mask=prompt,
        suppress_tokens=suppress,
        eos_id=tokenizer.eos_token_id,
        generator=torch.Generator(device=device).manual_seed(seed),
        callback=callback,
        vocab_size=len(tokenizer) if hasattr(tokenizer, "__len__") else None,
    )
    P = canvas.shape[1] - gen_length
    gen = out.sequences[:, P:]
    texts = [tokenizer.decode(t, skip_special_tokens=True) for t in trim_at_eos(gen, tokenizer.eos_token_id)]
    return texts, out


def generate_text_batches(model: torch.nn.Module, tokenizer, prompts: list[str], config: MDLMGenerationConfig,
                          batch_size: int, *, seed: int = 0,
                          callback: Callable | None = None) -> Iterator[tuple[list[str], list[str], SampleOutput]]:
    """:func:`generate_text` over ``prompts`` in batches of ``batch_size`` rows (memory independent of the number
    of prompts), yielding (the batch's prompts, texts, sampler output) as each batch finishes. Batch k is seeded
    with ``seed + k``, so a result depends on ``batch_size`` but is deterministic for a given one."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    for k, start in enumerate(range(0, len(prompts), batch_size)):
        batch = prompts[start : start + batch_size]
        texts, out = generate_text(model, tokenizer, batch, config, config.max_new_tokens, seed=seed + k,
                                   callback=callback)
        yield batch, texts, out


def sampler_config_from(defaults: dict[str, Any], overrides: dict[str, Any]) -> tuple[MDLMGenerationConfig, int]:
    """The generation config from checkpoint defaults + overrides (None = keep; old key names accepted), and
    its ``max_new_tokens``."""
    config = MDLMGenerationConfig.from_dict({**defaults, **{k: v for k, v in overrides.items() if v is not None}})
    return config, config.max_new_tokens
