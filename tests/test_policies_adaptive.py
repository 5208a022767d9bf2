"""Issue #17 §2: adaptive parallel commits — Fast-dLLM's factor rule, the entropy-bounded (EB) sampler and EOS-aware
early block termination: ≥ 1 commit per step, never outside the block, the rule's budget holds (and is used up),
threshold 1.0 is one token per step, a confident model fills a block in one step, a ragged batch == row by row."""

from __future__ import annotations

import pytest
import torch

from mdlm.sampling import MDLMGenerationConfig, generate
from mdlm.sampling.adaptive import entropy, entropy_bounded_count, factor_count
from mdlm.sampling.policies import EntropyBoundedPolicy, FastDLLMPolicy, make_policy

from test_sampling import EOS, MASK, Recorder, ToyLM, make_canvas, rand_prompts
from test_sampling_ragged import ROWS, alone, batch_canvas
from test_sampling_ragged import model as ragged_model  # noqa: F401 - the module fixture

pytestmark = pytest.mark.usefixtures("one_thread")

RULES = {"factor": dict(unmasking="fast_dllm", factor=1.0), "eb": dict(unmasking="eb", eb_gamma=0.3),
         "threshold": dict(unmasking="fast_dllm", threshold=0.5)}


class LastLogits:
    """Wraps a model: keeps the logits of its last call (the step's canvas; every step changes the canvas)."""

    def __init__(self, model):
        self.model, self.last = model, None

    def __call__(self, x):
        self.last = self.model(x)
        return self.last


def run_recorded(rule: dict, temperature: float, G: int = 24, bl: int = 8, scale: float = 2.0, seed: int = 5):
    """Generate with a recorder; → (the per-step (canvas before, committed, logits) triples, output)."""
    model = LastLogits(ToyLM(seed=seed, scale=scale))
    rec, steps = Recorder(), []

    def cb(step, canvas, info):
        rec(step, canvas, info)
        steps.append((info.committed, model.last.clone()))

    cfg = MDLMGenerationConfig(steps=G, block_length=bl, schedule="even", temperature=temperature,
                               return_history=True, **rule)
    out = generate(model, make_canvas(rand_prompts(3, 4), G), mask_id=MASK, config=cfg, callback=cb,
                   generator=torch.Generator().manual_seed(seed))
    return [(out.history[s], c, lg) for s, (c, lg) in enumerate(steps)], out


def suppressed(logits: torch.Tensor) -> torch.Tensor:
    lg = logits.double().clone()
    lg[..., MASK] = float("-inf")
    return lg


# ------------------------------------------------------------------------------------------ the pure rules


def brute_factor(err: list[float], f: float) -> int:
    e = sorted(err)
    n = max([k for k in range(1, len(e) + 1) if all((j + 1) * e[j - 1] < f for j in range(1, k + 1))], default=0)
    return max(n, 1) if e else 0


def brute_eb(ent: list[float], gamma: float) -> int:
    h = sorted(ent)
    k = max([k for k in range(1, len(h) + 1) if sum(h[:k]) - max(h[:k]) <= gamma], default=0)
    return max(k, 1) if h else 0


def test_the_count_rules_match_their_definitions_on_random_rows():
    g = torch.Generator().manual_seed(0)
    err = torch.rand(64, 12, generator=g, dtype=torch.float64) ** 3
    ent = torch.rand(64, 12, generator=g, dtype=torch.float64) * 0.5
    masked = torch.rand(64, 12, generator=g) < 0.7
    masked[0] = False  # a row with nothing masked commits nothing
    nf, ne = factor_count(err, masked, 0.8), entropy_bounded_count(ent, masked, 0.4)
    for b in range(64):
        m = masked[b]
        assert int(nf[b]) == brute_factor(err[b][m].tolist(), 0.8)
        assert int(ne[b]) == brute_eb(ent[b][m].tolist(), 0.4)
    assert int(nf[0]) == int(ne[0]) == 0


# ------------------------------------------------------------------------------------------ in the sampler


@pytest.mark.parametrize("temperature", [0.0, 1.0])  # the fused greedy step and the general step
@pytest.mark.parametrize("name", sorted(RULES))
def test_each_step_commits_at_least_one_and_only_inside_the_block(name, temperature):
    steps, out = run_recorded(RULES[name], temperature)
    P, bl = 4, 8
    assert not (out.sequences == MASK).any()
    for before, committed, _ in steps:
        blk = torch.zeros_like(committed)
        b = int(((before[:, P:] == MASK).any(dim=0).nonzero()[0]) // bl)  # the block being decoded
        blk[:, P + b * bl:P + (b + 1) * bl] = True
        masked = blk & (before == MASK)
        assert not (committed & ~masked).any()  # masked positions of the current block only
        assert ((committed.sum(dim=1) >= 1) | ~masked.any(dim=1)).all()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_eb_commits_stay_within_the_entropy_budget_and_use_it_up(temperature):
    gamma = RULES["eb"]["eb_gamma"]
    steps, out = run_recorded(RULES["eb"], temperature, scale=1.5)
    assert out.steps < 24  # it does commit in parallel on this model
    for before, committed, logits in steps:
        ent = entropy(suppressed(logits))  # (B, L)
        for b in range(committed.shape[0]):
            h = ent[b][committed[b]]
            last = not ((before[b] == MASK) & ~committed[b]).any()  # the last step commits what is left
            if h.numel() > 1 and not last:
                assert float(h.sum() - h.max()) <= gamma + 1e-6  # the budget holds


def test_eb_commits_are_maximal_prefixes_by_entropy():
    gamma = RULES["eb"]["eb_gamma"]
    steps, _ = run_recorded(RULES["eb"], 0.0, scale=1.5)
    P, bl = 4, 8
    for before, committed, logits in steps:
        ent = entropy(suppressed(logits))  # (B, L)
        b0 = int(((before[:, P:] == MASK).any(dim=0).nonzero()[0]) // bl)
        for b in range(committed.shape[0]):
            cols = [c for c in range(P + b0 * bl, P + (b0 + 1) * bl) if before[b, c] == MASK]
            if not cols:
                continue
            hs = sorted(float(ent[b, c]) for c in cols)
            k = int(committed[b].sum())
            assert k == brute_eb(hs, gamma) or k == len(cols)  # the rule's count (or the block's last step)
            assert float(ent[b][committed[b]].max()) <= hs[k - 1] + 1e-6  # the k lowest entropies


def test_factor_rule_commits_the_count_its_inequality_allows():
    f = RULES["factor"]["factor"]
    steps, out = run_recorded(RULES["factor"], 0.0, scale=3.0)
    P, bl = 4, 8
    assert out.steps < 24
    for before, committed, logits in steps:
        p = torch.softmax(suppressed(logits), dim=-1).max(dim=-1).values  # (B, L) p(x̂)
        b0 = int(((before[:, P:] == MASK).any(dim=0).nonzero()[0]) // bl)
        for b in range(committed.shape[0]):
            cols = [c for c in range(P + b0 * bl, P + (b0 + 1) * bl) if before[b, c] == MASK]
            if cols:
                k = int(committed[b].sum())
                assert k == brute_factor([1 - float(p[b, c]) for c in cols], f) or k == len(cols)


@pytest.mark.parametrize("rule", [dict(unmasking="fast_dllm", threshold=1.0), dict(unmasking="fast_dllm", factor=1e-9),
                                  dict(unmasking="eb", eb_gamma=0.0)])
def test_the_strictest_setting_is_one_token_per_step_greedy(rule):
    model = ToyLM(seed=1, scale=1.0)  # nothing is certain
    canvas = make_canvas(rand_prompts(2, 3), 16)
    one = generate(model, canvas, mask_id=MASK, config=MDLMGenerationConfig(steps=16, block_length=8, schedule="even",
                                                                            temperature=0.0))
    strict = generate(model, canvas, mask_id=MASK, config=MDLMGenerationConfig(steps=16, block_length=8,
                                                                               temperature=0.0, **rule))
    assert strict.nfe == strict.steps == 16
    if rule["unmasking"] == "fast_dllm":  # same ranking as greedy confidence: the same samples
        assert torch.equal(strict.sequences, one.sequences)


@pytest.mark.parametrize("name", sorted(RULES))
def test_a_confident_model_fills_a_block_in_one_step(name):
    model = ToyLM(seed=1, scale=300.0)  # p(x̂) ≈ 1, entropies ≈ 0: every rule commits the whole block
    out = generate(model, make_canvas(rand_prompts(2, 3), 16), mask_id=MASK,
                   config=MDLMGenerationConfig(steps=16, block_length=8, temperature=0.0, **RULES[name]))
    assert out.steps == out.nfe == 2 and not (out.sequences == MASK).any()


@pytest.mark.filterwarnings("ignore:steps=12 exceeds")
@pytest.mark.parametrize("temperature", [0.0])
@pytest.mark.parametrize("name", sorted(RULES))
def test_a_ragged_batch_decodes_each_row_as_alone(ragged_model, name, temperature):  # noqa: F811
    from test_sampling_ragged import MASK as M, EOS as E

    cfg = MDLMGenerationConfig(steps=12, block_length=6, temperature=temperature, eos_early_stop=True,
                               **RULES[name])
    x, am = batch_canvas(ROWS)
    batch = generate(ragged_model, x, mask_id=M, config=cfg, attention_mask=am, eos_id=E).sequences
    P = max(p for p, _ in ROWS)
    for i, (p, g) in enumerate(ROWS):
        solo = generate(ragged_model, alone(i, p, g), mask_id=M, config=cfg, eos_id=E).sequences[0]
        assert torch.equal(batch[i, P - p:P + g], solo)


def test_eb_fused_greedy_step_equals_the_general_step():
    model = ToyLM(seed=7, scale=1.5)
    canvas = make_canvas(rand_prompts(3, 4), 24)
    kw = dict(steps=24, block_length=8, temperature=0.0, unmasking="eb", eb_gamma=0.3)
    fused = generate(model, canvas, mask_id=MASK, config=MDLMGenerationConfig(**kw))  # confidence prob: fused
    general = generate(model, canvas, mask_id=MASK, config=MDLMGenerationConfig(**kw, confidence="margin"))
    assert MDLMGenerationConfig(**kw).uses_greedy_step and not MDLMGenerationConfig(**kw, confidence="margin").uses_greedy_step
    assert torch.equal(fused.sequences, general.sequences) and fused.nfe == general.nfe


# ------------------------------------------------------------------------------------------ EOS early stop


class EndsAt:
    """A model whose text ends at column ``end``: EOS is by far the likeliest token from there on (left of it a
    random toy model)."""

    def __init__(self, end: int, strength: float = 8.0):
        self.toy, self.end, self.strength = ToyLM(seed=2, scale=2.0), end, strength
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        lg = self.toy(x).clone()
        lg[:, self.end:, EOS] += self.strength
        return lg


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_eos_early_stop_fills_the_ended_text_and_saves_forwards(temperature):
    P, G, bl = 4, 32, 8
    canvas = make_canvas(rand_prompts(2, P), G)
    kw = dict(steps=G, block_length=bl, schedule="even", temperature=temperature, stop_at_eos=False)
    plain = generate(EndsAt(P + 10), canvas, mask_id=MASK, eos_id=EOS, config=MDLMGenerationConfig(**kw),
                     generator=torch.Generator().manual_seed(0))
    early = generate(EndsAt(P + 10), canvas, mask_id=MASK, eos_id=EOS,
                     config=MDLMGenerationConfig(**kw, eos_early_stop=True), generator=torch.Generator().manual_seed(0))
    assert plain.eos_early_filled == 0 and early.eos_early_filled > 0
    assert early.nfe < plain.nfe  # the saved forwards
    assert not (early.sequences == MASK).any()
    assert (early.sequences[:, P + 16:] == EOS).all()  # the blocks after the ended text were never decoded
    assert torch.equal(early.sequences[:, :P + 8], plain.sequences[:, :P + 8])  # before the end: unchanged


def test_eos_early_stop_is_off_by_default_and_needs_an_eos_id():
    assert MDLMGenerationConfig().eos_early_stop is False
    with pytest.raises(ValueError, match="eos_early_stop needs the EOS id"):
        generate(ToyLM(), make_canvas(rand_prompts(1, 2), 4), mask_id=MASK,
                 config=MDLMGenerationConfig(steps=4, eos_early_stop=True))


# ------------------------------------------------------------------------------------------ settings


def test_policies_are_built_from_their_config_fields():
    assert make_policy(MDLMGenerationConfig(unmasking="fast_dllm", factor=2.0)) == FastDLLMPolicy(factor=2.0,
                                                                                                   temperature=1.0)
    assert isinstance(make_policy(MDLMGenerationConfig(unmasking="eb", eb_gamma=0.5)), EntropyBoundedPolicy)
    assert make_policy(MDLMGenerationConfig(unmasking="eb", eb_gamma=0.5)).gamma == 0.5
    for bad, msg in [(dict(factor=1.0), "needs unmasking='fast_dllm'"),
                     (dict(unmasking="fast_dllm", factor=1.0, threshold=0.9), "not both"),
                     (dict(unmasking="fast_dllm", factor=0.0), "factor must be > 0"),
                     (dict(unmasking="eb", eb_gamma=-1.0), "eb_gamma"),
                     (dict(unmasking="eb", threshold=0.9), "threshold decoding"),
                     (dict(verify=True), "verify reproduces greedy"),
                     (dict(verify=True, temperature=0.0, cache_implementation="dual", block_length=4), "verify runs full")]:
        with pytest.raises(ValueError, match=msg):
            MDLMGenerationConfig(**bad)


def test_the_new_settings_are_command_line_flags():
    import argparse

    from mdlm.sampling import add_generation_arguments, given_settings

    p = argparse.ArgumentParser()
    names = add_generation_arguments(p)
    a = p.parse_args(["--unmasking", "eb", "--eb-gamma", "0.2", "--eos-early-stop"])
    cfg = MDLMGenerationConfig.from_dict(given_settings(a, names))
    assert (cfg.unmasking, cfg.eb_gamma, cfg.eos_early_stop) == ("eb", 0.2, True)
    a = p.parse_args(["--unmasking", "fast_dllm", "--factor", "1.5", "--verify", "--verify-draft", "4",
                      "--temperature", "0"])
    cfg = MDLMGenerationConfig.from_dict(given_settings(a, names))
    assert (cfg.factor, cfg.verify, cfg.verify_draft) == (1.5, True, 4)


def test_eos_early_fill_rules_on_a_hand_made_canvas():
    from mdlm.sampling.adaptive import eos_early_fill

    M, E, T = MASK, EOS, 5  # T: an ordinary token
    x = torch.tensor([[T, M, M, M, M, M],    # (a) every masked block position predicted EOS → block and after
                      [T, E, M, M, M, M],    # (b) committed EOS at 1, everything right of it predicted EOS
                      [T, M, E, M, M, M],    # (b) but a masked position left of the EOS keeps decoding
                      [T, M, M, M, M, M]])   # a non-EOS prediction: nothing happens
    gen = torch.ones_like(x, dtype=torch.bool)
    gen[:, 0] = False
    window = torch.arange(0, 4)  # the block: columns 0..3; columns 4, 5 come later
    masked = x[:, :4] == M
    tok = torch.full((4, 4), E)
    tok[2, 1] = T
    tok[3, 2] = T
    fill = eos_early_fill(x, gen, M, window, masked, tok, E, torch.tensor([E]))
    want = torch.tensor([[0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]]).bool()
    assert torch.equal(fill, want)


@pytest.mark.parametrize("cache", ["dual", "block_exact"])
@pytest.mark.parametrize("name", ["factor", "eb"])
def test_the_adaptive_rules_work_with_a_kv_cache(name, cache):
    from mdlm.modeling import MDLMConfig, MDLMForMaskedLM

    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=24, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                     max_position_embeddings=32, mask_token_id=MASK, block_size=4 if cache == "block_exact" else None)
    model = MDLMForMaskedLM(cfg).eval()
    out = generate(model, make_canvas(rand_prompts(2, 4), 8), mask_id=MASK, eos_id=EOS,
                   config=MDLMGenerationConfig(steps=8, block_length=4, temperature=0.0, cache_implementation=cache,
                                               eos_early_stop=True, **RULES[name]))
    assert not (out.sequences == MASK).any() and out.nfe <= 8
