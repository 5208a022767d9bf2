"""The certainty-forcing loss (dParallel, Chen et al. 2025, Sec. 4.2), on the scored positions of a semi-AR mask.

    L = CE(p_θ(· | x̃), y)  +  λ · mean over {i : argmax p_θ(· | x̃)_i = y_i} of H(softmax(z_i / T))

The cross-entropy keeps the model on its own trajectory y (the teacher's greedy tokens); the entropy term, applied
only where the prediction is already right, pushes those predictions to certainty — so that many positions of a
block pass a confidence threshold at the same step. T < 1 sharpens the distribution whose entropy is minimised.
Both terms are means over positions (cross-entropy over all scored positions, entropy over the correct ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass
class CertaintyLoss:
    loss: Tensor  # () the objective
    cross_entropy: Tensor  # () nats per scored position
    entropy: Tensor  # () nats, mean over correctly predicted positions (0 when none)
    accuracy: Tensor  # () share of scored positions whose argmax is the trajectory's token


def certainty_forcing_loss(logits: Tensor, targets: Tensor, *, entropy_weight: float = 1.0,
                           temperature: float = 0.5) -> CertaintyLoss:
    """``logits`` (M, V) at the scored positions, ``targets`` (M,) the trajectory's tokens there.

    Computed in float32 whatever the logits' dtype. Raises ``ValueError`` for M = 0, ``temperature <= 0`` or a
    negative ``entropy_weight``."""
    if logits.shape[0] == 0:
        raise ValueError("no scored positions: the batch's semi-AR mask selected nothing")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if entropy_weight < 0:
        raise ValueError(f"entropy_weight must be >= 0, got {entropy_weight}")
    z = logits.float()  # (M, V)
    ce = F.cross_entropy(z, targets)  # ()
    correct = (z.argmax(-1) == targets).float()  # (M,)
    logq = F.log_softmax(z / temperature, dim=-1)  # (M, V)
    ent = -(logq.exp() * logq).sum(-1)  # (M,)
    ent_correct = (ent * correct).sum() / correct.sum().clamp_min(1.0)  # ()
    return CertaintyLoss(loss=ce + entropy_weight * ent_correct, cross_entropy=ce.detach(),
                         entropy=ent_correct.detach(), accuracy=correct.mean())
