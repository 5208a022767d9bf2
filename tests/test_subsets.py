"""--max_train_samples / --max_eval_samples keep a fair, repeatable subset of a set stored in class order."""

import torch

from mdlm.data.subsets import subset_indices


def test_a_limit_draws_across_classes_the_same_way_every_run():
    labels = torch.arange(400) // 100  # four classes stored one after another (like the emoji export)
    idx = subset_indices(400, 40)
    assert torch.equal(idx, subset_indices(400, 40))  # seeded: the same rows on every run
    assert len(idx) == 40 and len(set(idx.tolist())) == 40 and bool((idx[1:] > idx[:-1]).all())  # distinct, in order
    assert set(labels[idx].tolist()) == {0, 1, 2, 3}  # the first 40 rows would be class 0 only
    assert subset_indices(400, None) is None and subset_indices(400, 400) is None and subset_indices(400, 0) is None
