"""The AR source's own chat answers (the reference row of the SFT side-by-side table): greedy HF ``generate`` on the
causal LM with its chat template, left-padded batches."""

from __future__ import annotations

import torch


@torch.no_grad()
def ar_chat_answers(lm, tok, prompts: list[str], max_new_tokens: int, batch_size: int = 32) -> list[str]:
    """Greedy answers of causal LM ``lm`` to single-turn chat ``prompts`` (the tokenizer's chat template with the
    generation header), cut at EOS, special tokens dropped, whitespace-stripped."""
    if tok.chat_template is None:
        raise ValueError("the AR source's tokenizer has no chat template")
    device = next(lm.parameters()).device
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    was_side, was_pad = tok.padding_side, tok.pad_token
    tok.padding_side = "left"
    if tok.pad_token is None:  # a GGUF tokenizer may have none (SmolLM2 on transformers 5.17): pad with EOS
        tok.pad_token = tok.eos_token
    out: list[str] = []
    try:
        for s in range(0, len(prompts), batch_size):
            texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
                     for p in prompts[s : s + batch_size]]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen = lm.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                              eos_token_id=tok.eos_token_id)  # (B, L + new)
            new = gen[:, enc["input_ids"].shape[1]:]  # (B, new)
            out += [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]
    finally:
        tok.padding_side, tok.pad_token = was_side, was_pad
    return out
