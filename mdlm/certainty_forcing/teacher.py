"""The teacher's trajectories: a model's own greedy semi-AR decodes, one token per step (LLaDA's ``generate``).

Each prompt is decoded by :func:`mdlm.sampling.generate` with the decoding benchmark's greedy base setting
(``mdlm.evaluation.decode_rows.base_settings``: blocks of ``block_length``, one step per generated token, confidence =
p(argmax), no EOS stop), optionally with Fast-dLLM's dual cache and CUDA graphs for speed (the dual cache is
approximate: its trajectories are the model's decodes under that cache, not token for token LLaDA's).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from ..evaluation.decode_rows import base_settings
from ..pipelines.text import build_text_canvas
from ..sampling import MDLMGenerationConfig, generate


def teacher_config(gen_length: int, block_length: int, cache: str = "none", cuda_graphs: bool = False,
                   torch_compile: bool = False) -> MDLMGenerationConfig:
    """LLaDA's greedy one-token-per-step setting at ``gen_length`` / ``block_length`` (+ ``cache``, graphs,
    ``torch_compile``)."""
    return MDLMGenerationConfig(**base_settings(gen_length, block_length) | {
        "cache_implementation": cache, "cuda_graphs": cuda_graphs, "torch_compile": torch_compile})


@torch.inference_mode()
def teacher_trajectories(model: torch.nn.Module, tokenizer, prompts: list[str], config: MDLMGenerationConfig, *,
                         batch_size: int, progress: bool = True) -> Iterator[dict]:
    """Yield ``{"prompt", "prompt_ids", "response_ids"}`` per prompt (in order): the prompt's token ids and the
    ``config.max_new_tokens`` tokens the model decodes after it. Prompts are decoded ``batch_size`` at a time on the
    model's device, left-padded as the decoding benchmark pads them. Raises ``ValueError`` for ``batch_size < 1`` or
    a prompt that does not fit the model's context beside the generated tokens."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    from tqdm.auto import tqdm

    dev = next(model.parameters()).device
    G = config.max_new_tokens
    max_len = getattr(model.config, "max_position_embeddings", None)
    suppress = [i for i in (tokenizer.pad_token_id,) if i is not None and i != tokenizer.eos_token_id]
    bar = tqdm(total=len(prompts), desc="teacher trajectories", unit="prompt", disable=not progress)
    t0, made = time.perf_counter(), 0
    for s in range(0, len(prompts), batch_size):
        batch = prompts[s:s + batch_size]
        canvas, attn, pm = build_text_canvas(tokenizer, batch, G, max_len)  # (B, P + G) each
        out = generate(model, canvas.to(dev), mask_id=tokenizer.mask_token_id, config=config,
                       attention_mask=attn.to(dev), cond_mask=pm.to(dev), suppress_tokens=suppress,
                       vocab_size=len(tokenizer), generator=torch.Generator(device=dev).manual_seed(s))
        seqs = out.sequences[:, -G:].cpu()  # (B, G)
        for i, p in enumerate(batch):
            yield {"prompt": p, "prompt_ids": canvas[i][pm[i]].tolist(), "response_ids": seqs[i].tolist()}
        made += len(batch) * G
        bar.update(len(batch))
        bar.set_postfix(tokens_per_s=f"{made / (time.perf_counter() - t0):,.0f}")
    bar.close()


def degenerate_share(responses: list[list[int]], max_distinct: int = 2) -> float:
    """Share of ``responses`` (token-id lists) made of at most ``max_distinct`` distinct tokens — greedy decoding
    stuck on one or two tokens (a model trained for minutes prints newlines). Distilling such trajectories makes a
    fast model of that, so the recipe warns. Raises ``ValueError`` for no responses."""
    if not responses:
        raise ValueError("no responses")
    return sum(len(set(r)) <= max_distinct for r in responses) / len(responses)


def student_generation_defaults(base: dict, block_length: int, threshold: float = 0.9) -> dict:
    """The distilled model's sampler defaults: the base's (``generation_config.json`` fields) with the decoding it was
    distilled for — greedy (temperature 0, confidence = p(argmax), no choice noise), Fast-dLLM's ``threshold`` rule
    with ``steps`` = the generated length (only a cap), semi-AR blocks of ``block_length`` (at most the length)."""
    gen = int(base.get("max_new_tokens") or 128)
    return {**base, "temperature": 0.0, "confidence": "prob", "choice_noise": 0.0, "schedule": "even",
            "unmasking": "fast_dllm", "threshold": threshold, "steps": gen, "block_length": min(block_length, gen)}
