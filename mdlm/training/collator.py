"""Batch collation for the MDM trainer.

A feature may carry ``input_ids`` (required), ``length`` (real tokens; the rest is padding),
``attention_mask``, ``prompt_mask`` (never masked, no loss: SFT prompts, image class tokens) and
``cond_mask`` (positions replaced by [MASK] under label dropout). The batch adds ``eligible`` =
positions that may be masked and are scored, and ``padded`` (a Python bool, decided here on the host): whether any
row has padding — when not, the trainer runs the model without an attention mask, so the GPU is never asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MDMCollator:
    pad_token_id: int

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor | bool]:
        L = max(len(f["input_ids"]) for f in features)
        B = len(features)
        ids = torch.full((B, L), self.pad_token_id, dtype=torch.long)
        attn = torch.zeros((B, L), dtype=torch.bool)
        prompt = torch.zeros((B, L), dtype=torch.bool)
        cond = torch.zeros((B, L), dtype=torch.bool)
        for i, f in enumerate(features):  # gathering ragged python lists; the maths is vectorised later
            x = torch.as_tensor(f["input_ids"], dtype=torch.long)
            n = int(f.get("length", len(x)))
            ids[i, :n] = x[:n]
            if "attention_mask" in f:
                attn[i, : len(x)] = torch.as_tensor(f["attention_mask"], dtype=torch.bool)
                attn[i, n:] = False
            else:
                attn[i, :n] = True
            if "prompt_mask" in f:
                prompt[i, : len(x)] = torch.as_tensor(f["prompt_mask"], dtype=torch.bool)
            if "cond_mask" in f:
                cond[i, : len(x)] = torch.as_tensor(f["cond_mask"], dtype=torch.bool)
        ids = ids.masked_fill(~attn, self.pad_token_id)
        return {
            "input_ids": ids,
            "attention_mask": attn.long(),
            "eligible": attn & ~prompt,
            "cond_mask": cond,
            "padded": not bool(attn.all()),
        }
