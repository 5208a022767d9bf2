"""The fused token cross-entropy (mdlm/fused_ce.py) gives F.cross_entropy's values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from mdlm.fused_ce import token_cross_entropy_fused
from mdlm.loss import token_cross_entropy


def _reference(logits, targets, mask_id):
    lg = logits.float().clone()
    lg[:, mask_id] = float("-inf")
    return F.cross_entropy(lg, targets, reduction="none")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_values_and_gradients_match_cross_entropy_with_the_mask_column_excluded(dtype):
    g = torch.Generator().manual_seed(0)
    M, V, mask_id = 37, 101, 100
    base = (torch.randn(M, V, generator=g) * 3).to(dtype)
    targets = torch.randint(0, V - 1, (M,), generator=g)
    w = torch.rand(M, generator=g)  # per-row upstream weights, like w(t)/N in the MDM loss
    a = base.clone().requires_grad_(True)
    b = base.clone().requires_grad_(True)
    ours, ref = token_cross_entropy_fused(a, targets, mask_id), _reference(b, targets, mask_id)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-2, atol=2e-2)
    assert ours.dtype == torch.float32 and torch.allclose(ours, ref, **tol)
    (ours * w).sum().backward()
    (ref * w).sum().backward()
    assert a.grad.dtype == dtype and torch.allclose(a.grad.float(), b.grad.float(), **tol)
    assert torch.all(a.grad[:, mask_id] == 0)  # the [MASK] class gets no probability, hence no gradient


def test_same_as_the_plain_path_of_the_loss_without_a_mask_id():
    g = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(5, 11, generator=g), torch.randint(0, 11, (5,), generator=g)
    assert torch.allclose(token_cross_entropy_fused(logits, targets, None), token_cross_entropy(logits, targets, None),
                          atol=1e-6)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"logits \(M, V\) and targets \(M,\) expected"):
        token_cross_entropy_fused(torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long), None)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_cuda_path_matches_for_varying_row_counts():
    for M in (64, 97, 130):  # a new row count must not change results (dynamic rows, static vocabulary)
        logits = torch.randn(M, 50258, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        ref_in = logits.detach().clone().requires_grad_(True)
        t = torch.randint(0, 50257, (M,), device="cuda")
        ours, ref = token_cross_entropy_fused(logits, t, 50257), _reference(ref_in, t, 50257)
        assert torch.allclose(ours, ref, rtol=1e-3, atol=1e-3)
        ours.sum().backward()
        ref.sum().backward()
        assert torch.allclose(logits.grad.float(), ref_in.grad.float(), atol=1e-2)  # 1 bf16 ulp at |g| ≈ 1
