"""Does a generated image match its prompt? Two honest, simple measures on the features of the classifier
trained here (:mod:`mdlm.evaluation.classifier`) — no text encoder is involved, so nothing can be gamed by text.

1. **Category match** (``prompt_category_accuracy``): the share of generated images that the classifier assigns
   to the category of the data-set image their prompt (caption) belongs to. For a class-conditional model this is
   its class accuracy.
2. **Caption retrieval among K** (``caption_retrieval_accuracy``): every caption of the data set names one real
   image (emoji: one caption ↔ one picture). For a generated image with prompt p, draw K-1 other captions at
   random; the image "retrieves" p when its features are nearer (cosine) to the real image of p than to the real
   images of all K-1 distractors (ties count as misses). Chance = 1/K. It asks: is the picture closer to the one
   it was asked for than to random other pictures of the set? Reference points beside it: 1/K (chance) and the
   same score for the VQ reconstructions of the real images (what a perfect generator of the tokenizer's images
   would reach); the real image itself scores 1 by construction, so it is no reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

Tensor = torch.Tensor
TIE_TOLERANCE = 1e-9  # cosine differences below this are round-off: a tie, counted as a miss


def caption_index(reference_captions: Sequence[str], prompts: Sequence[str]) -> np.ndarray:
    """(N,) index of each prompt's real image among ``reference_captions`` (the first image of a repeated caption).
    ValueError naming the prompts that no reference image has."""
    first: dict[str, int] = {}
    for i, c in enumerate(reference_captions):
        first.setdefault(str(c), i)
    missing = sorted({str(p) for p in prompts if str(p) not in first})
    if missing:
        shown = ", ".join(repr(m) for m in missing[:3])
        raise ValueError(f"{len(missing)} prompt(s) have no reference image with that caption (e.g. {shown})")
    return np.array([first[str(p)] for p in prompts], dtype=np.int64)


def caption_retrieval_accuracy(generated: np.ndarray | Tensor, reference: np.ndarray | Tensor, target: np.ndarray | Tensor,
                               k: int = 10, seed: int = 0) -> float:
    """Share of generated images nearer (cosine of features) to their prompt's real image than to each of K-1
    random other real images (see module docstring; a difference ≤ :data:`TIE_TOLERANCE` is a tie = a miss).

    Args:
        generated: (N, d) features of the generated images.
        reference: (P, d) features of the real images, one per caption (P ≥ k).
        target: (N,) index into ``reference`` of each generated image's prompt.
        k: candidates per image (the prompt + k-1 distractors drawn without replacement).
    """
    g = torch.as_tensor(np.asarray(generated), dtype=torch.float64)
    r = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    t = torch.as_tensor(np.asarray(target), dtype=torch.long)
    n, p = g.shape[0], r.shape[0]
    if not 2 <= k <= p:
        raise ValueError(f"k must lie in [2, {p}] (the number of reference captions), got {k}")
    if t.shape != (n,) or (n and (int(t.min()) < 0 or int(t.max()) >= p)):
        raise ValueError(f"target must be ({n},) indices into {p} reference images")
    sim = torch.nn.functional.normalize(g, dim=1) @ torch.nn.functional.normalize(r, dim=1).T  # (N, P)
    own = sim.gather(1, t[:, None])  # (N, 1)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, p, generator=gen, dtype=torch.float64)  # (N, P)
    noise.scatter_(1, t[:, None], 2.0)  # the prompt itself is never a distractor
    distractors = noise.topk(k - 1, dim=1, largest=False).indices  # (N, k-1): a uniform draw w/o replacement
    best_other = sim.gather(1, distractors).max(dim=1).values  # (N,)
    return float((own[:, 0] - best_other > TIE_TOLERANCE).double().mean())


def prompt_category_accuracy(predicted: Tensor, reference_labels: Tensor, target: np.ndarray | Tensor) -> float:
    """Share of generated images whose predicted class (N,) equals the class of their prompt's real image."""
    want = torch.as_tensor(np.asarray(reference_labels)).long()[torch.as_tensor(np.asarray(target)).long()]  # (N,)
    return float((predicted.cpu().long() == want).double().mean())
