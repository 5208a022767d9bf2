"""The sampler's outputs for fixed seeds are bit-identical to the recorded ones (tests/fixtures/sampler_golden.json,
recorded with the sampler before its split into loop / model runner / unmasking policies): every strategy, cache
mode, guidance setting and the EOS policy (cases in tests/sampler_golden.py)."""

from __future__ import annotations

import json

import pytest
import torch

from sampler_golden import CASES, FIXTURE, run_case, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


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
