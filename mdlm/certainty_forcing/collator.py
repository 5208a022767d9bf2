"""Batches of trajectories laid out as the sampler's canvas: prompts left-padded to end at one column, the response
after it (right-padded only when responses differ in length), so positions (counted over real tokens) and block
boundaries are those the decoder sees."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TrajectoryCollator:
    pad_token_id: int

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """features: ``{"prompt_ids", "response_ids"}`` lists → ``input_ids`` (B, L), ``attention_mask`` (B, L),
        ``response`` (B, L) bool. Raises ``ValueError`` for an empty response."""
        P = max(len(f["prompt_ids"]) for f in features)
        G = max(len(f["response_ids"]) for f in features)
        B = len(features)
        ids = torch.full((B, P + G), self.pad_token_id, dtype=torch.long)
        attn = torch.zeros((B, P + G), dtype=torch.long)
        resp = torch.zeros((B, P + G), dtype=torch.bool)
        for i, f in enumerate(features):  # ragged python lists → one tensor; the maths is vectorised later
            p, r = f["prompt_ids"], f["response_ids"]
            if not r:
                raise ValueError(f"row {i} has an empty response")
            ids[i, P - len(p):P] = torch.as_tensor(p, dtype=torch.long)
            ids[i, P:P + len(r)] = torch.as_tensor(r, dtype=torch.long)
            attn[i, P - len(p):P + len(r)] = 1
            resp[i, P:P + len(r)] = True
        return {"input_ids": ids, "attention_mask": attn, "response": resp}
