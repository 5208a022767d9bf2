"""The sampler's outputs for fixed seeds are bit-identical to the recorded ones (tests/fixtures/sampler_golden.json,
float64, re-recorded 2026-11-30 because the float32 recording of the sampler before its split into loop / model
runner / unmasking policies proved CPU-dependent; see tests/sampler_golden.py): every strategy, cache mode, guidance
setting and the EOS policy (cases in tests/sampler_golden.py)."""

from __future__ import annotations

import json

import pytest
import torch

from sampler_golden import CASES, FIXTURE, FIXTURE_META, run_case, tiny_model

with open(FIXTURE_META) as _f:
    _RECORDED_TORCH = json.load(_f)["torch"]

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(torch.__version__.split("+")[0] != _RECORDED_TORCH.split("+")[0],
                       reason=f"fixture recorded with torch {_RECORDED_TORCH} (CI's pin); torch {torch.__version__} "
                              "may round the random model's logits differently: re-record with "
                              "`python tests/sampler_golden.py --write` on a sampler known to be right to compare"),
]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def golden():
    with open(FIXTURE) as f:
        return json.load(f)


def test_every_case_is_recorded(golden):
    assert sorted(golden) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixed_seed_outputs_unchanged(model, golden, name):
    got = run_case(model, name)
    want = golden[name]
    assert torch.equal(torch.tensor(got["sequences"]), torch.tensor(want["sequences"])), name
    assert (got["nfe"], got["steps"], got["positions"]) == (want["nfe"], want["steps"], want["positions"])
    assert got.get("history") == want.get("history")
