"""The greedy step's per-position statistics (mdlm.sampling.row_stats): the PyTorch implementation against float64
definitions, the Triton kernel against it (on a GPU, or on a CPU under TRITON_INTERPRET=1 when triton is installed),
and the sort-free ranking of select_top against a stable sort."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from mdlm.sampling.confidence import PAIRWISE_MAX_WIDTH, select_top
from mdlm.sampling.row_stats import backend_for, greedy_row_stats, row_stats_torch, use_backend

pytestmark = pytest.mark.usefixtures("one_thread")

HAS_TRITON = importlib.util.find_spec("triton") is not None
KERNEL_DEVICE = "cuda" if torch.cuda.is_available() else ("cpu" if os.environ.get("TRITON_INTERPRET") == "1" else None)
KERNEL_SKIP = ("the Triton kernel: needs `pip install triton` and a CUDA GPU, or on a CPU `pip install triton` and "
               "TRITON_INTERPRET=1 in the environment")


def float64_stats(logits: torch.Tensor, suppress: torch.Tensor):
    """x̂, log p(x̂), 1 − p(x̂) and H(p) from the definitions, in float64."""
    lg = logits.double().index_fill(-1, suppress, float("-inf"))
    logp = torch.log_softmax(lg, dim=-1)
    tok = lg.argmax(-1)
    lc = logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1)
    p = logp.exp()
    err = p.scatter(-1, tok.unsqueeze(-1), 0.0).sum(-1)  # the other tokens' mass (exact where p(x̂) ≈ 1)
    ent = -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)
    return tok, lc, err, ent


def logits_with_cases(V: int, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    """(2, 6, V): random rows at several temperatures, a near-certain row, a tie across ids 4095 / 4096 (a chunk
    boundary of the kernel) and a row whose largest logit is a suppressed id."""
    g = torch.Generator().manual_seed(seed)
    lg = torch.randn(2, 6, V, generator=g) * torch.tensor([0.5, 3.0, 30.0, 1.0, 1.0, 5.0]).view(1, 6, 1)
    lg[1, 0, V // 3] = 60.0  # p(x̂) = 1 − ~1e-23: 1 − p must not round to 0 … nor to anything but the other mass
    if V > 4096:
        lg[1, 1, 4095] = lg[1, 1, 4096] = lg[1, 1].max() + 1.0  # tie → the lower id
    lg[1, 2, 3] = lg[1, 2].max() + 5.0  # suppressed below
    return lg.to(dtype)


@pytest.mark.parametrize("V", [37, 5000])
def test_torch_stats_match_float64_definitions(V):
    lg = logits_with_cases(V)
    sup = torch.tensor([3, 7])
    tok, lc, err, ent = row_stats_torch(lg, sup, want_entropy=True)
    rtok, rlc, rerr, rent = float64_stats(lg, sup)
    assert torch.equal(tok, rtok)
    assert not torch.isin(tok, sup).any()
    torch.testing.assert_close(lc.double(), rlc, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(ent.double(), rent, atol=5e-5, rtol=1e-5)
    # 1 − p(x̂) is the other tokens' mass: exact (relative) even where p(x̂) itself rounds to 1 in float32
    torch.testing.assert_close(err.double(), rerr, atol=1e-6, rtol=1e-4)
    assert 0 < float(rerr[1, 0]) < 1e-20 and abs(float(err[1, 0]) / float(rerr[1, 0]) - 1) < 1e-3


def test_entropy_is_zeros_unless_asked():
    lg = logits_with_cases(50)
    assert torch.count_nonzero(row_stats_torch(lg, torch.tensor([3]), want_entropy=False)[3]) == 0


def test_backend_choice_and_errors():
    lg = torch.zeros(1, 2, 8)
    assert backend_for(lg) == "torch"  # CPU logits
    with use_backend("torch"):
        assert backend_for(lg) == "torch"
    with pytest.raises(ValueError, match="backend must be one of"):
        with use_backend("fast"):
            pass
    if os.environ.get("TRITON_INTERPRET") != "1":
        with use_backend("triton"), pytest.raises(RuntimeError, match="needs CUDA logits"):
            greedy_row_stats(lg, torch.tensor([0]))
    with pytest.raises(ValueError, match="row_stats must be one of"):
        greedy_row_stats(lg, torch.tensor([0]), backend="fast")


def test_the_environment_variable_chooses_the_default(monkeypatch):
    from mdlm.sampling import row_stats

    monkeypatch.setattr(row_stats, "_BACKEND", {})
    monkeypatch.setenv("MDLM_ROW_STATS", "torch")
    assert row_stats.current_backend() == "torch"
    monkeypatch.setattr(row_stats, "_BACKEND", {})
    monkeypatch.setenv("MDLM_ROW_STATS", "cuda")
    with pytest.raises(ValueError, match="MDLM_ROW_STATS must be one of"):
        row_stats.current_backend()


@pytest.mark.skipif(not HAS_TRITON or KERNEL_DEVICE is None,
                    reason=KERNEL_SKIP)
@pytest.mark.parametrize("V,dtype", [(37, torch.float32), (5000, torch.bfloat16), (50257, torch.bfloat16),
                                     (8192, torch.float16)])
def test_triton_kernel_matches_torch(V, dtype):
    from mdlm.sampling.row_stats_triton import row_stats_triton

    lg = logits_with_cases(V, dtype).to(KERNEL_DEVICE)
    sup = torch.tensor([3, 7, *range(V - 5, V)], device=KERNEL_DEVICE)  # the mask id, … and a padded head's tail
    tok, lc, err, ent = row_stats_torch(lg, sup, want_entropy=True)
    ktok, klc, kerr, kent = row_stats_triton(lg, sup)
    assert torch.equal(ktok, tok)
    torch.testing.assert_close(klc, lc, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(kerr, err, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(kent, ent, atol=5e-5, rtol=1e-5)
    # the near-certain row: 1 − p(x̂) ~ 1e-23 kept (relative error), where p(x̂) itself is 1 in float32
    rerr = float64_stats(lg.cpu(), sup.cpu())[2][1, 0]
    assert kerr[1, 0] > 0 and abs(float(kerr[1, 0]) / float(rerr) - 1) < 1e-3
    if V > 4096:
        assert int(ktok[1, 1]) == 4095
    # no suppressed ids, a non-contiguous (strided) view of the logits
    wide = torch.cat([lg, lg], dim=1)[:, ::2]
    for a, b in zip(row_stats_triton(wide, sup[:0]), row_stats_torch(wide, sup[:0], True, True)):
        torch.testing.assert_close(a, b, atol=5e-5, rtol=1e-4)


@pytest.mark.skipif(not HAS_TRITON or KERNEL_DEVICE is None,
                    reason=KERNEL_SKIP)
def test_kernel_ranks_near_certain_positions_as_float64_does():
    """Margins of 25 and 27 nats over 1,000 ids: float32 log_softmax gives log p = 0 for both (a tie), the kernel
    −log1p(rest) ≈ −1.4e-8 and −1.9e-9, ordered as the float64 definition orders them."""
    from mdlm.sampling.row_stats_triton import row_stats_triton

    lg = torch.zeros(1, 2, 1000)
    lg[0, 0, 5], lg[0, 1, 9] = 25.0, 27.0
    sup = torch.tensor([999])
    _, klc, _, _ = row_stats_triton(lg.to(KERNEL_DEVICE), sup.to(KERNEL_DEVICE))
    _, rlc, _, _ = float64_stats(lg, sup)
    assert float(rlc[0, 0]) < float(rlc[0, 1]) < 0
    assert float(klc[0, 0]) < float(klc[0, 1]) < 0
    torch.testing.assert_close(klc.double().cpu(), rlc, rtol=1e-3, atol=0)
    assert torch.equal(row_stats_torch(lg, sup)[1], torch.zeros(1, 2))  # the PyTorch path ties them


@pytest.mark.skipif(not HAS_TRITON or KERNEL_DEVICE is None,
                    reason=KERNEL_SKIP)
def test_a_kernel_that_fails_at_its_first_launch_warns_once_and_falls_back(monkeypatch):
    from mdlm.sampling import row_stats_triton as rt

    def broken(*_):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(rt, "row_stats_triton", broken)
    monkeypatch.setattr(rt, "LAUNCH", {"ok": False, "failed": None})
    lg = logits_with_cases(300).to(KERNEL_DEVICE)
    sup = torch.tensor([3], device=KERNEL_DEVICE)
    with pytest.warns(RuntimeWarning, match="failed at its first launch"):
        got = rt.greedy_row_stats_op(lg, sup)
    for a, b in zip(got, row_stats_torch(lg, sup, True, True)):
        assert torch.equal(a, b)
    assert backend_for(lg, "auto") == "torch"
    with pytest.raises(RuntimeError, match="working triton"):
        backend_for(lg, "triton")


@pytest.mark.skipif(not HAS_TRITON or KERNEL_DEVICE is None,
                    reason=KERNEL_SKIP)
@pytest.mark.parametrize("rule", [dict(rule="schedule"), dict(rule="schedule", threshold=0.5),
                                  dict(rule="fast_dllm", threshold=0.9), dict(rule="fast_dllm", factor=1.0),
                                  dict(rule="eb", eb_gamma=0.5)])
def test_greedy_step_commits_the_same_with_the_kernel(rule):
    from mdlm.sampling.fused_step import greedy_confidence_step

    B, W, V, mask_id = 3, 16, 5000, 4999
    lg = logits_with_cases(V, torch.bfloat16).to(KERNEL_DEVICE)  # (2, 6, V)
    lg = torch.cat([lg, lg.flip(1), lg], dim=1)[:, :W].repeat(2, 1, 1)[:B]  # (B, W, V)
    x = torch.full((B, W + 4), mask_id, device=KERNEL_DEVICE)
    x[:, :4] = 1
    x[1, 6] = 2  # a committed position inside the window
    gen = torch.zeros_like(x, dtype=torch.bool)
    gen[:, 4:] = True
    args = (lg, x, torch.arange(4, W + 4, device=KERNEL_DEVICE), torch.ones(B, W, dtype=torch.bool, device=KERNEL_DEVICE),
            torch.tensor([12, 3, 0], device=KERNEL_DEVICE), torch.tensor([mask_id], device=KERNEL_DEVICE), gen, mask_id, None)
    ref = greedy_confidence_step(*args, **rule, row_stats="torch")
    got = greedy_confidence_step(*args, **rule, row_stats="triton")
    for a, b in zip(ref, got):
        assert torch.equal(a, b)
    assert (ref[1].sum(dim=1) > 0).all()  # the step committed something in every row (not a vacuous comparison)


@pytest.mark.parametrize("W", [5, 32, PAIRWISE_MAX_WIDTH + 7])
def test_select_top_is_a_stable_descending_sort(W):
    g = torch.Generator().manual_seed(W)
    score = torch.randint(0, 4, (6, W), generator=g).double()  # many ties
    score[0, 1] = float("-inf")
    score[1, 2] = float("nan")
    eligible = torch.rand(6, W, generator=g) < 0.7
    eligible[0, 1] = eligible[1, 2] = True
    n = torch.randint(0, W + 2, (6,), generator=g)
    got = select_top(score, eligible, n)
    for b in range(6):  # the reference: a stable sort of the eligible positions, one row at a time
        idx = [i for i in range(W) if eligible[b, i]]
        key = score[b].nan_to_num(nan=-1e300, neginf=-1e300)
        chosen = sorted(idx, key=lambda i: -float(key[i]))[:int(n[b])]  # Python's sort is stable
        assert set(torch.nonzero(got[b]).flatten().tolist()) == set(chosen)
