"""Behavioural tests of mdlm.sampling.generate on deterministic toy models (CPU, fast)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch

from mdlm.sampling import MDLMGenerationConfig, SamplerConfig, SampleOutput, as_logits_fn, generate, trim_at_eos
from mdlm.schedules import even_masked_counts, get_schedule

V = 24
MASK = 23
EOS = 22
PAD = 21


pytestmark = pytest.mark.usefixtures("one_thread")


class ToyLM:
    """A fixed random "model": logits = s·((emb[x] + ctx) @ W + pos_bias[pos]).

    ctx is the mean of an integer-valued embedding over the attended positions (exact in float32, so
    padding does not change it); pos are position ids that skip left padding. Outputs depend on
    every input token, so commits change later predictions.
    """

    def __init__(self, seed: int = 0, scale: float = 1.0, max_len: int = 128, dim: int = 8):
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.randn(V, dim, generator=g)
        self.emb2 = torch.randint(-3, 4, (V, dim), generator=g).float()
        self.W = torch.randn(dim, V, generator=g)
        self.pos_bias = torch.randn(max_len, V, generator=g)
        self.scale = scale
        self.calls = 0
        self.rows = 0

    def logits(self, x: torch.Tensor, am: torch.Tensor | None, pos: torch.Tensor | None) -> torch.Tensor:
        self.calls += 1
        self.rows += x.shape[0]
        if am is None:
            am = torch.ones_like(x)
        if pos is None:
            pos = torch.arange(x.shape[1]).expand_as(x)
        w = am.unsqueeze(-1).float()  # (B, L, 1)
        ctx = (self.emb2[x] * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1)  # (B, 1, d)
        return self.scale * ((self.emb[x] + ctx) @ self.W + self.pos_bias[pos])  # (B, L, V)

    def __call__(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        pos = None if attention_mask is None else (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        return self.logits(x, attention_mask, pos)


class FakeHF(torch.nn.Module):
    """HF-style wrapper: forward(input_ids, attention_mask, position_ids) -> object with .logits.
    Without position_ids it would use 0..L-1, so ragged equality needs the adapter's position ids."""

    def __init__(self, toy: ToyLM):
        super().__init__()
        self.toy = toy

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        return SimpleNamespace(logits=self.toy.logits(input_ids, attention_mask, position_ids))


def make_canvas(prompts: torch.Tensor, gen_length: int) -> torch.Tensor:
    B = prompts.shape[0]
    return torch.cat([prompts, torch.full((B, gen_length), MASK)], dim=1)


def rand_prompts(B: int, P: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 20, (B, P), generator=torch.Generator().manual_seed(seed))


def gen0(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Recorder:
    def __init__(self):
        self.committed, self.infos, self.canvases = [], [], []

    def __call__(self, step, canvas, info):
        self.committed.append(info.committed.sum(dim=1))
        self.infos.append(info)
        self.canvases.append(canvas)


# ----------------------------------------------------------------------------- LLaDA reference


def llada_reference(model, prompt, gen_length, block_length, steps, cfg_scale=0.0):
    """Our own straightforward re-implementation of LLaDA's low-confidence, greedy, semi-AR sampler
    (Nie et al. 2025, their reference ``generate``), with the [MASK] logit suppressed."""
    B, P = prompt.shape
    x = torch.full((B, P + gen_length), MASK, dtype=torch.long)
    x[:, :P] = prompt
    prompt_index = x != MASK
    num_blocks = gen_length // block_length
    steps_per_block = steps // num_blocks
    for nb in range(num_blocks):
        start, end = P + nb * block_length, P + (nb + 1) * block_length
        block_masked = (x[:, start:end] == MASK).sum(dim=1)
        for i in range(steps_per_block):
            mask_index = x == MASK
            logits = model(x)
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = MASK
                un = model(un_x)
                logits = logits + cfg_scale * (logits - un)  # == un + (s+1)(c - un)
            logits[..., MASK] = float("-inf")
            x0 = logits.argmax(dim=-1)
            p = torch.softmax(logits.double(), dim=-1)
            x0_p = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, end:] = float("-inf")
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.full_like(x0_p, float("-inf")))
            for j in range(B):
                n = int(block_masked[j])
                k = n // steps_per_block + (1 if i < n % steps_per_block else 0)
                if k == 0:
                    continue
                idx = torch.topk(confidence[j], k).indices
                x[j, idx] = x0[j, idx]
    return x


@pytest.mark.parametrize("gen_length,block_length,steps,cfg_scale",
                         [(32, 8, 16, 0.0), (32, 8, 12, 0.0), (24, 24, 7, 0.0), (32, 16, 10, 1.5)])
def test_llada_equivalence(gen_length, block_length, steps, cfg_scale):
    model = ToyLM(seed=3)
    prompt = rand_prompts(3, 6, seed=7)
    ref = llada_reference(model, prompt, gen_length, block_length, steps, cfg_scale)
    cfg = SamplerConfig(steps=steps, block_length=block_length, schedule="even", temperature=0.0,
                        remasking="low_confidence", confidence="prob", cfg_scale=cfg_scale)
    out = generate(model, make_canvas(prompt, gen_length), mask_id=MASK, config=cfg, generator=gen0())
    assert torch.equal(out.sequences, ref)
    assert out.nfe == steps * (2 if cfg_scale > 0 else 1)


# ----------------------------------------------------------------------------- schedules & blocks


@pytest.mark.parametrize("schedule", ["linear", "cosine", "exp", "log-exp", "arccos", "poly2", "even"])
@pytest.mark.parametrize("block_length", [None, 8])
def test_commits_follow_schedule_exactly(schedule, block_length):
    gen_length, steps = 24, 12
    # ragged: row 1 has two already-known positions inside the generated region
    canvas = make_canvas(rand_prompts(2, 4), gen_length)
    gmask = canvas == MASK
    gmask[1, 6] = gmask[1, 17] = False
    canvas[1, 6], canvas[1, 17] = 5, 6
    rec = Recorder()
    cfg = SamplerConfig(steps=steps, block_length=block_length, schedule=schedule, temperature=1.0)
    out = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generate_mask=gmask, generator=gen0(), callback=rec)
    got = torch.stack(rec.committed, dim=1)  # (B, steps)
    assert got.shape == (2, steps) and out.steps == steps
    n_blocks = 1 if block_length is None else 3
    spb = steps // n_blocks
    for row in range(2):
        gen_cols = gmask[row].nonzero().squeeze(1)
        expected = []
        bl = block_length or gen_length
        for b in range(n_blocks):
            n = len(gen_cols[b * bl:(b + 1) * bl])
            counts = even_masked_counts(n, spb) if schedule == "even" else get_schedule(schedule).masked_counts(n, spb)
            expected += (counts[:-1] - counts[1:]).tolist()
        assert got[row].tolist() == expected
    assert not (out.sequences == MASK).any()


def test_nothing_outside_current_block_is_committed():
    P, gen_length, bl = 5, 24, 8
    cfg = SamplerConfig(steps=12, block_length=bl, schedule="cosine", temperature=1.0, return_history=True)
    out = generate(ToyLM(), make_canvas(rand_prompts(2, P), gen_length), mask_id=MASK, config=cfg, generator=gen0())
    hist = out.history
    assert len(hist) == 13
    for step in range(12):
        block = step // 4
        changed = hist[step + 1] != hist[step]
        start, end = P + block * bl, P + (block + 1) * bl
        assert changed[:, end:].sum() == 0 and changed[:, :start].sum() == 0
        assert changed.sum() > 0
        if (step + 1) % 4 == 0:  # block finished
            assert not (hist[step + 1][:, start:end] == MASK).any()
            assert (hist[step + 1][:, end:] == MASK).all()


def test_uneven_steps_split_over_blocks():
    rec = Recorder()
    cfg = SamplerConfig(steps=10, block_length=8, schedule="even", temperature=0.0)
    out = generate(ToyLM(), make_canvas(rand_prompts(1, 3), 24), mask_id=MASK, config=cfg, callback=rec)
    assert [i.block for i in rec.infos] == [0] * 4 + [1] * 3 + [2] * 3  # first 10 % 3 blocks get +1
    assert out.steps == 10 and not (out.sequences == MASK).any()


def test_prompt_pad_and_non_generated_positions_never_change():
    torch.manual_seed(0)
    canvas = make_canvas(rand_prompts(3, 6), 16)
    am = torch.ones_like(canvas)
    am[0, :2] = 0
    canvas[0, :2] = PAD
    canvas[:, 1 + 6] = MASK  # an extra [MASK] outside generate_mask (e.g. a class slot) ...
    gmask = canvas == MASK
    gmask[:, 7] = False  # ... which must stay [MASK]
    for sampler, remasking in [("maskgit", "low_confidence"), ("maskgit", "ancestral"), ("moment", "low_confidence")]:
        cfg = SamplerConfig(steps=8, temperature=1.0, sampler=sampler, remasking=remasking, remask_committed=0.0)
        out = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generate_mask=gmask, attention_mask=am,
                       generator=gen0())
        assert torch.equal(out.sequences[~gmask], canvas[~gmask])
        assert (out.sequences[:, 7] == MASK).all()
        assert not (out.sequences[gmask] == MASK).any()


# ----------------------------------------------------------------------------- randomness


def test_seeding():
    canvas = make_canvas(rand_prompts(2, 4), 20)
    cfg = SamplerConfig(steps=10, temperature=1.0, choice_temperature=2.0)
    a = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generator=gen0(1)).sequences
    b = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generator=gen0(1)).sequences
    c = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generator=gen0(2)).sequences
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # greedy is deterministic whatever the seed
    g = SamplerConfig(steps=10, temperature=0.0)
    assert torch.equal(generate(ToyLM(), canvas, mask_id=MASK, config=g, generator=gen0(1)).sequences,
                       generate(ToyLM(), canvas, mask_id=MASK, config=g, generator=gen0(2)).sequences)


def test_top_k_1_and_tiny_top_p_equal_greedy():
    canvas = make_canvas(rand_prompts(2, 4), 16)
    greedy = generate(ToyLM(), canvas, mask_id=MASK, config=SamplerConfig(steps=8, temperature=0.0)).sequences
    k1 = generate(ToyLM(), canvas, mask_id=MASK, config=SamplerConfig(steps=8, temperature=1.5, top_k=1),
                  generator=gen0()).sequences
    p0 = generate(ToyLM(), canvas, mask_id=MASK, config=SamplerConfig(steps=8, temperature=1.5, top_p=1e-6),
                  generator=gen0()).sequences
    assert torch.equal(greedy, k1) and torch.equal(greedy, p0)


def test_suppressed_tokens_never_appear():
    banned = [0, 1, 2, 3, 4, 5, 6, 7]
    canvas = make_canvas(rand_prompts(4, 3), 30)
    for temperature in (0.0, 3.0):
        cfg = SamplerConfig(steps=10, temperature=temperature)
        out = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, suppress_tokens=banned, generator=gen0())
        gen = out.sequences[:, 3:]
        assert not torch.isin(gen, torch.tensor(banned + [MASK])).any()
    # without suppression the toy model does produce them
    out = generate(ToyLM(), canvas, mask_id=MASK, config=SamplerConfig(steps=10, temperature=3.0), generator=gen0())
    assert torch.isin(out.sequences[:, 3:], torch.tensor(banned)).any()


# ----------------------------------------------------------------------------- ragged batches


def test_left_padded_ragged_batch_equals_one_by_one():
    toy = ToyLM(seed=5)
    hf = FakeHF(toy)
    prompts = [torch.tensor([3, 4, 5, 6, 7]), torch.tensor([8, 9]), torch.tensor([10, 11, 12])]
    gen_length, P = 16, 5
    rows, ams = [], []
    for p in prompts:
        pad = P - len(p)
        rows.append(torch.cat([torch.full((pad,), PAD), p, torch.full((gen_length,), MASK)]))
        ams.append(torch.cat([torch.zeros(pad, dtype=torch.long), torch.ones(len(p) + gen_length, dtype=torch.long)]))
    canvas, am = torch.stack(rows), torch.stack(ams)
    for cfg in [SamplerConfig(steps=8, block_length=8, schedule="even", temperature=0.0),
                SamplerConfig(steps=6, schedule="cosine", temperature=0.0, cfg_scale=1.0),
                SamplerConfig(steps=8, sampler="moment", temperature=0.0, choice_temperature=0.0)]:
        batched = generate(hf, canvas, mask_id=MASK, config=cfg, attention_mask=am, generator=gen0()).sequences
        for j, p in enumerate(prompts):
            single = generate(hf, make_canvas(p[None], gen_length), mask_id=MASK, config=cfg, generator=gen0()).sequences
            assert torch.equal(batched[j, P - len(p):], single[0])
            assert (batched[j, : P - len(p)] == PAD).all()
    # the adapter's position ids matter: without them the padded rows differ
    def no_pos(x, am):
        return toy.logits(x, am, None)

    cfg = SamplerConfig(steps=8, block_length=8, schedule="even", temperature=0.0)
    bad = generate(no_pos, canvas, mask_id=MASK, config=cfg, attention_mask=am).sequences
    good = generate(hf, canvas, mask_id=MASK, config=cfg, attention_mask=am).sequences
    assert not torch.equal(bad[1:], good[1:])


def test_as_logits_fn_variants():
    toy = ToyLM()
    x = make_canvas(rand_prompts(2, 3), 5)
    am = torch.ones_like(x)
    ref = toy(x, am)
    assert torch.equal(as_logits_fn(lambda t: toy(t, None))(x, am), ref)
    assert torch.equal(as_logits_fn(lambda t, a: toy(t, a))(x, am), ref)
    assert torch.equal(as_logits_fn(FakeHF(toy))(x, am), ref)
    assert torch.equal(as_logits_fn(lambda t: (toy(t),))(x, None), ref)
    wrapped = as_logits_fn(toy)
    assert as_logits_fn(wrapped) is wrapped


# ----------------------------------------------------------------------------- CFG


def test_cfg_scale_zero_is_no_cfg_and_guidance_changes_output():
    toy = ToyLM(seed=2)
    canvas = make_canvas(rand_prompts(3, 6), 16)
    cond = canvas != MASK
    base = SamplerConfig(steps=8, temperature=1.0, choice_temperature=1.0)
    plain = generate(toy, canvas, mask_id=MASK, config=base, generator=gen0())
    zero = generate(toy, canvas, mask_id=MASK, config=SamplerConfig(**{**base.__dict__, "cfg_scale": 0.0}),
                    cond_mask=cond, generator=gen0())
    guided_cfg = SamplerConfig(**{**base.__dict__, "cfg_scale": 2.0})
    guided = generate(toy, canvas, mask_id=MASK, config=guided_cfg, cond_mask=cond, generator=gen0())
    assert torch.equal(plain.sequences, zero.sequences) and plain.nfe == zero.nfe == 8
    assert guided.nfe == 16 > zero.nfe
    assert not torch.equal(guided.sequences, plain.sequences)
    # batched and separate unconditional passes agree; the batched run makes half the calls
    toy.calls = 0
    generate(toy, canvas, mask_id=MASK, config=guided_cfg, cond_mask=cond, generator=gen0())
    batched_calls, toy.calls = toy.calls, 0
    sep = generate(toy, canvas, mask_id=MASK, config=SamplerConfig(**{**guided_cfg.__dict__, "cfg_batch": False}),
                   cond_mask=cond, generator=gen0())
    assert torch.equal(sep.sequences, guided.sequences) and sep.nfe == guided.nfe
    assert batched_calls == 8 and toy.calls == 16


def test_cfg_interval():
    toy = ToyLM(seed=2)
    canvas = make_canvas(rand_prompts(2, 6), 16)
    rec = Recorder()
    cfg = SamplerConfig(steps=8, schedule="linear", temperature=0.0, cfg_scale=1.0, cfg_interval=(0.0, 0.5))
    out = generate(toy, canvas, mask_id=MASK, config=cfg, generator=gen0(), callback=rec)
    guided = [bool(i.guided.all()) for i in rec.infos]
    fracs = [float(i.masked_fraction[0]) for i in rec.infos]
    assert guided == [0.0 < f <= 0.5 for f in fracs] and any(guided) and not all(guided)
    assert out.nfe == 8 + sum(guided)
    # eMIGM's schedule-time convention: guide iff lo < s <= hi, s = 1 - (i+1)/S after the step
    rec = Recorder()
    cfg = SamplerConfig(steps=8, temperature=0.0, cfg_scale=1.0, cfg_interval=(0.1, 0.3), cfg_time="schedule")
    generate(toy, canvas, mask_id=MASK, config=cfg, generator=gen0(), callback=rec)
    assert [bool(i.guided.all()) for i in rec.infos] == [0.1 < 1 - (i + 1) / 8 <= 0.3 for i in range(8)]
    # an interval that excludes every step is exactly no guidance
    cfg = SamplerConfig(steps=8, temperature=0.0, cfg_scale=3.0, cfg_interval=(0.95, 1.0), cfg_time="schedule")
    off = generate(toy, canvas, mask_id=MASK, config=cfg, generator=gen0())
    plain = generate(toy, canvas, mask_id=MASK, config=SamplerConfig(steps=8, temperature=0.0), generator=gen0())
    assert torch.equal(off.sequences, plain.sequences) and off.nfe == 8


# ----------------------------------------------------------------------------- threshold / EOS


def test_threshold_decoding():
    model = ToyLM(seed=4, scale=6.0)  # confident
    P, bl = 4, 8
    canvas = make_canvas(rand_prompts(2, P), 32)
    rec = Recorder()
    cfg = SamplerConfig(steps=32, block_length=bl, schedule="even", temperature=0.0, threshold=0.9,
                        return_history=True)
    out = generate(model, canvas, mask_id=MASK, config=cfg, generator=gen0(), callback=rec)
    assert not (out.sequences == MASK).any()
    assert out.nfe == out.steps < 32
    per_step = torch.stack(rec.committed, dim=1)  # (B, steps)
    for s, info in enumerate(rec.infos):
        start, end = P + info.block * bl, P + (info.block + 1) * bl
        unfinished = (out.history[s][:, start:end] == MASK).any(dim=1)
        assert (per_step[unfinished, s] >= 1).all()  # at least one per step in every unfinished row
        assert (per_step[~unfinished, s] == 0).all()
    # threshold 0: every masked position qualifies, one step per block
    cfg0 = SamplerConfig(steps=32, block_length=bl, schedule="even", temperature=0.0, threshold=0.0)
    assert generate(model, canvas, mask_id=MASK, config=cfg0).nfe == 4
    # threshold 1: nothing qualifies, one commit per step (the schedule floor)
    cfg1 = SamplerConfig(steps=32, block_length=bl, schedule="even", temperature=0.0, threshold=1.0)
    assert generate(model, canvas, mask_id=MASK, config=cfg1).nfe == 32
    # with few steps the schedule is a floor: the block still ends within its steps
    cfg2 = SamplerConfig(steps=8, block_length=bl, schedule="even", temperature=0.0, threshold=1.0)
    out2 = generate(model, canvas, mask_id=MASK, config=cfg2)
    assert out2.nfe == 8 and not (out2.sequences == MASK).any()


def test_eos_stop_and_trim():
    toy = ToyLM(seed=6)
    P, gen_length = 4, 24

    def eos_model(x, am=None):
        logits = toy(x, am).clone()
        logits[:, P + 6:, EOS] = 50.0  # the answer ends after 6 tokens
        return logits

    canvas = make_canvas(rand_prompts(2, P), gen_length)
    cfg = SamplerConfig(steps=24, block_length=8, schedule="even", temperature=0.0)
    with_eos = generate(eos_model, canvas, mask_id=MASK, config=cfg, eos_id=EOS)
    without = generate(eos_model, canvas, mask_id=MASK, config=cfg)
    assert with_eos.nfe < without.nfe
    assert torch.equal(with_eos.sequences, without.sequences)  # the model pads with EOS anyway
    assert (with_eos.sequences[:, P + 6:] == EOS).all()
    assert not (with_eos.sequences == MASK).any()
    trimmed = trim_at_eos(with_eos.sequences[:, P:], EOS)
    assert [len(t) for t in trimmed] == [6, 6]
    assert trimmed[0] == with_eos.sequences[0, P:P + 6].tolist()
    assert trim_at_eos([[1, EOS, 2], [3, 4]], EOS, keep_eos=True) == [[1, EOS], [3, 4]]


# ----------------------------------------------------------------------------- other strategies


def test_moment_sampler_greedy_limit_equals_maskgit_greedy():
    canvas = make_canvas(rand_prompts(3, 5), 20)
    maskgit = SamplerConfig(steps=10, block_length=10, schedule="cosine", temperature=0.0)
    moment = SamplerConfig(steps=10, block_length=10, schedule="cosine", temperature=0.0, sampler="moment",
                           choice_temperature=0.0)
    a = generate(ToyLM(), canvas, mask_id=MASK, config=maskgit).sequences
    b = generate(ToyLM(), canvas, mask_id=MASK, config=moment).sequences
    assert torch.equal(a, b)


@pytest.mark.parametrize("hybrid", [0.0, 0.5, 1.0])
def test_moment_sampler_counts_and_seeding(hybrid):
    canvas = make_canvas(rand_prompts(2, 5), 20)
    cfg = SamplerConfig(steps=8, schedule="cosine", temperature=1.0, sampler="moment", choice_temperature=4.0,
                        hybrid=hybrid)
    rec = Recorder()
    flat = ToyLM(scale=0.3)  # a flat model, so that sampling varies
    a = generate(flat, canvas, mask_id=MASK, config=cfg, generator=gen0(3), callback=rec)
    b = generate(flat, canvas, mask_id=MASK, config=cfg, generator=gen0(3))
    c = generate(flat, canvas, mask_id=MASK, config=cfg, generator=gen0(4))
    counts = get_schedule("cosine").masked_counts(20, 8)
    assert torch.stack(rec.committed, 1)[0].tolist() == (counts[:-1] - counts[1:]).tolist()
    assert torch.equal(a.sequences, b.sequences) and not torch.equal(a.sequences, c.sequences)
    assert not (a.sequences == MASK).any()


def test_ancestral_and_random_remasking():
    canvas = make_canvas(rand_prompts(2, 4), 40)
    rec = Recorder()
    cfg = SamplerConfig(steps=10, schedule="linear", remasking="ancestral", temperature=1.0)
    out = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generator=gen0(), callback=rec)
    assert not (out.sequences == MASK).any()
    per_step = torch.stack(rec.committed, 1)
    assert per_step.sum() == 80 and out.steps == 10
    assert not torch.equal(per_step[0], per_step[1])  # random binomial counts, not the schedule
    # a step that commits nothing leaves the canvas unchanged: the next step reuses the logits
    rec = Recorder()
    cfg = SamplerConfig(steps=8, schedule="linear", remasking="ancestral", temperature=1.0)
    out = generate(ToyLM(), make_canvas(rand_prompts(1, 4), 8), mask_id=MASK, config=cfg, generator=gen0(5),
                   callback=rec)
    changed = [bool(c.any()) for c in rec.committed]
    assert out.nfe == 1 + sum(changed[:-1]) < 8
    # remasking="random": exact counts, random positions
    cfg = SamplerConfig(steps=10, schedule="linear", remasking="random", temperature=0.0)
    rec = Recorder()
    a = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generator=gen0(1), callback=rec).sequences
    b = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generator=gen0(2)).sequences
    assert torch.stack(rec.committed, 1)[0].tolist() == [4] * 10 and not torch.equal(a, b)


@pytest.mark.parametrize("confidence", ["margin", "entropy", "random"])
def test_other_confidences_complete(confidence):
    canvas = make_canvas(rand_prompts(2, 4), 16)
    cfg = SamplerConfig(steps=8, confidence=confidence, temperature=0.0)
    out = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generator=gen0())
    assert not (out.sequences == MASK).any() and out.nfe == 8


@pytest.mark.parametrize("strategy", ["low_confidence", "random"])
def test_remask_committed(strategy):
    P, gen_length, bl = 4, 24, 12
    canvas = make_canvas(rand_prompts(2, P), gen_length)
    rec = Recorder()
    cfg = SamplerConfig(steps=12, block_length=bl, schedule="linear", temperature=1.0, remask_committed=0.25,
                        remask_strategy=strategy, return_history=True)
    out = generate(ToyLM(), canvas, mask_id=MASK, config=cfg, generator=gen0(), callback=rec)
    remasked = torch.stack([i.remasked for i in rec.infos])  # (steps, B, L)
    assert remasked.any()
    assert not remasked[:, :, :P].any()  # never the prompt
    for s, info in enumerate(rec.infos):  # only tokens of the current block, never at its last step
        start, end = P + info.block * bl, P + (info.block + 1) * bl
        assert not remasked[s][:, :start].any() and not remasked[s][:, end:].any()
        if info.step_in_block == info.steps_in_block - 1:
            assert not remasked[s].any()
            assert not (out.history[s + 1][:, start:end] == MASK).any()
    assert not (out.sequences == MASK).any()
    assert torch.equal(out.sequences[:, :P], canvas[:, :P])


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise():
    canvas = make_canvas(rand_prompts(1, 3), 8)
    with pytest.raises(ValueError, match="steps"):
        SamplerConfig(steps=0)
    with pytest.raises(ValueError, match="valid: maskgit, moment"):
        SamplerConfig(sampler="nope")
    with pytest.raises(ValueError, match="low_confidence, random, ancestral"):
        SamplerConfig(remasking="topk")
    with pytest.raises(ValueError, match="prob, margin, entropy, random"):
        SamplerConfig(confidence="x")
    with pytest.raises(ValueError, match="even"):
        SamplerConfig(schedule="zigzag")
    with pytest.raises(ValueError):
        SamplerConfig(top_p=0.0)
    with pytest.raises(ValueError):
        SamplerConfig(cfg_interval=(0.5, 0.2))
    with pytest.raises(ValueError, match="threshold decoding is for unmasking='confidence' or 'fast_dllm'"):
        SamplerConfig(sampler="moment", threshold=0.9)
    with pytest.raises(ValueError, match="unknown generation setting.*'gen_lenght'"):
        MDLMGenerationConfig.from_dict({"gen_lenght": 3})  # a typo is an error, never silently dropped
    with pytest.raises(TypeError):
        MDLMGenerationConfig(cfg_scale=1.0)  # old names are only mapped by from_dict / SamplerConfig
    with pytest.raises(ValueError, match="mask_id"):
        generate(ToyLM(), canvas, mask_id=None)
    with pytest.raises(ValueError, match="shape"):
        generate(ToyLM(), canvas, mask_id=MASK, generate_mask=torch.ones(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="shape"):
        generate(ToyLM(), canvas, mask_id=MASK, attention_mask=torch.ones(2, 11))
    with pytest.raises(ValueError, match="overlap"):
        generate(ToyLM(), canvas, mask_id=MASK, cond_mask=torch.ones_like(canvas, dtype=torch.bool))
    with pytest.raises(ValueError, match="blocks"):
        generate(ToyLM(), canvas, mask_id=MASK, config=SamplerConfig(steps=2, block_length=2))
    with pytest.warns(UserWarning, match="exceeds"):
        out = generate(ToyLM(), canvas, mask_id=MASK, config=SamplerConfig(steps=50, temperature=0.0))
    assert out.steps == 8 and out.nfe == 8


def test_nothing_to_generate_and_output_type():
    canvas = rand_prompts(2, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = generate(ToyLM(), canvas, mask_id=MASK, config=SamplerConfig(return_history=True))
    assert isinstance(out, SampleOutput) and out.nfe == 0 and torch.equal(out.sequences, canvas)
    assert len(out.history) == 1
