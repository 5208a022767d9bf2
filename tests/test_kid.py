"""KID (mdlm/evaluation/kid.py): unbiased at any sample size, grows with a distribution shift, symmetric, seeded;
and the seeded disjoint halves of the held-out split that give the unpaired real-vs-real floors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdlm.evaluation.kid import kid, mmd2_unbiased
from mdlm.evaluation.reference_halves import split_halves


def gauss(n: int, d: int = 16, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


@pytest.mark.parametrize("n_x,n_y", [(60, 60), (200, 50), (1000, 171)])
def test_two_samples_of_one_gaussian_score_about_zero_at_any_size(n_x, n_y):
    k = kid(gauss(n_x, seed=1), gauss(n_y, seed=2), num_subsets=50)
    assert k.subset_size == min(n_x, n_y) // 2 and k.std > 0
    assert abs(k.mean) < 3 * k.std + 1e-12  # unbiased: no small-sample offset, unlike FID
    # FID of the same pairs is clearly positive (its bias), the point of using KID for the floors
    from mdlm.evaluation.fid import feature_fid

    assert feature_fid(gauss(n_x, seed=1), gauss(n_y, seed=2)) > 0.5


def test_shifted_gaussians_score_above_zero_and_grow_with_the_shift():
    x = gauss(300, seed=3)
    means = [kid(x, gauss(300, shift=s, seed=4), num_subsets=20).mean for s in (0.0, 0.25, 0.5, 1.0)]
    stds = [kid(x, gauss(300, shift=s, seed=4), num_subsets=20).std for s in (0.0, 0.25, 0.5, 1.0)]
    assert means[1] > 3 * stds[1] and means[1] > abs(means[0]) * 3
    assert means[0] < means[1] < means[2] < means[3]


def test_symmetric_and_seeded():
    x, y = gauss(80, seed=5), gauss(80, shift=0.3, seed=6)
    assert float(mmd2_unbiased(torch.tensor(x)[None], torch.tensor(y)[None])) == pytest.approx(
        float(mmd2_unbiased(torch.tensor(y)[None], torch.tensor(x)[None])), rel=1e-12)
    whole = {"num_subsets": 3, "subset_size": 80}  # every subset is the whole set: exact symmetry, std 0
    assert kid(x, y, **whole).mean == pytest.approx(kid(y, x, **whole).mean, rel=1e-12)
    a, b = kid(x, y, subset_size=40, seed=7), kid(x, y, subset_size=40, seed=7)
    assert a == b and kid(x, y, subset_size=40, seed=8).mean != a.mean
    assert kid(x, y, subset_size=40).mean == pytest.approx(kid(y, x, subset_size=40).mean, abs=3 * a.std)


def test_matches_torchmetrics_per_subset_estimate():
    tm = pytest.importorskip("torchmetrics.image.kid", reason="torchmetrics is not installed: pip install -e \".[images]\"")
    x, y = torch.tensor(gauss(50, d=8, seed=9)), torch.tensor(gauss(50, d=8, shift=0.2, seed=10))
    assert float(mmd2_unbiased(x[None], y[None])) == pytest.approx(float(tm.poly_mmd(x, y)), rel=1e-10)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="one d"):
        kid(gauss(10, d=4), gauss(10, d=5))
    with pytest.raises(ValueError, match="≥ 2 rows"):
        kid(gauss(1), gauss(10))


def test_halves_are_disjoint_equal_seeded_and_capped():
    a, b = split_halves(343, seed=0)
    assert len(a) == len(b) == 171 and not set(a.tolist()) & set(b.tolist())
    assert set(a.tolist()) | set(b.tolist()) <= set(range(343))
    a2, b2 = split_halves(343, seed=0)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    a3, _ = split_halves(343, seed=1)
    assert not torch.equal(a, a3)
    assert a.tolist() != list(range(171))  # shuffled, not the first half of the file order
    ac, bc = split_halves(10_000, seed=0, cap=500)
    assert len(ac) == len(bc) == 500 and not set(ac.tolist()) & set(bc.tolist())
    with pytest.raises(ValueError, match="at least 4"):
        split_halves(3)


def test_class_plan_follows_the_reference_mix_or_is_even():
    from mdlm.evaluation.class_mix import class_counts, class_plan

    test_labels = torch.tensor([0] * 22 + [1] * 192 + [2] * 16 + [5] * 7)  # emoji-like: one dominant class
    counts = class_counts(test_labels, 1000, 6)
    assert int(counts.sum()) == 1000 and counts[3] == counts[4] == 0 and counts[1] == max(counts)
    assert torch.allclose(counts.double() / 1000, torch.bincount(test_labels, minlength=6).double() / 237, atol=1e-3)
    plan = class_plan("data", 5, 6, test_labels)
    assert len(plan) == 30 and plan == sorted(plan)  # class-major, num_per_class × classes in all
    assert class_plan("uniform", 2, 3) == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="unknown class mix"):
        class_plan("balanced", 2, 3)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        class_counts(torch.tensor([0, 3]), 10, 3)
