"""Issue #14 §5: a row decodes the same in any batch as alone (whatever its prompt length, generation length and
block count, with every cache mode); no strategy emits an id outside the tokenizer, [MASK] or pad; generate runs
under inference mode."""

from __future__ import annotations

import pytest
import torch

from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.sampling import MDLMGenerationConfig, generate

V, MASK, PAD, EOS = 64, 63, 62, 61
ROWS = [(5, 16), (2, 9), (0, 20), (3, 4)]  # (prompt length, generated length) per row

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=64, mask_token_id=MASK, pad_token_id=PAD,
                     initializer_range=0.3)
    return MDLMForMaskedLM(cfg).to(torch.float64).eval()


def prompt(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 60, (n,), generator=torch.Generator().manual_seed(seed))


def batch_canvas(rows: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """[pad …][prompt][MASK × g][pad …] per row (prompts end at one column; generated regions start there)."""
    P, G = max(p for p, _ in rows), max(g for _, g in rows)
    x = torch.full((len(rows), P + G), PAD)
    am = torch.zeros_like(x)
    for i, (p, g) in enumerate(rows):
        x[i, P - p:P] = prompt(p, i)
        x[i, P:P + g] = MASK
        am[i, P - p:P + g] = 1
    return x, am


def alone(i: int, p: int, g: int) -> torch.Tensor:
    return torch.cat([prompt(p, i), torch.full((g,), MASK)]).unsqueeze(0)


STRATEGIES = {
    "llada": dict(schedule="even", temperature=0.0),
    "cosine_eos": dict(schedule="cosine", temperature=0.0),
    "threshold": dict(schedule="even", temperature=0.0, threshold=0.3),
    "fast_dllm": dict(schedule="even", temperature=0.0, unmasking="fast_dllm", threshold=0.5),
}


@pytest.mark.filterwarnings("ignore:steps=12 exceeds")  # a short row alone clamps its steps, as in the batch
@pytest.mark.parametrize("cache", ["none", "dual", "prefix"])
@pytest.mark.parametrize("block_length", [None, 4, 6])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_row_decodes_the_same_in_a_ragged_batch_as_alone(model, cache, block_length, strategy):
    if cache != "none" and block_length is None:
        pytest.skip("a K/V cache needs blocks")
    cfg = MDLMGenerationConfig(steps=12, block_length=block_length, cache_implementation=cache, **STRATEGIES[strategy])
    eos = EOS if strategy == "cosine_eos" else None
    x, am = batch_canvas(ROWS)
    out = generate(model, x, mask_id=MASK, config=cfg, attention_mask=am, eos_id=eos, suppress_tokens=[PAD])
    P = max(p for p, _ in ROWS)
    for i, (p, g) in enumerate(ROWS):
        one = generate(model, alone(i, p, g), mask_id=MASK, config=cfg, eos_id=eos, suppress_tokens=[PAD])
        assert torch.equal(out.sequences[i, P - p:P + g], one.sequences[0]), (i, p, g)
        assert (out.sequences[i, :P - p] == PAD).all() and (out.sequences[i, P + g:] == PAD).all()


# ---------------------------------------------------------------------------------------------- ids


class PaddedHead:
    """A "model" whose LM head is padded beyond the tokenizer (TOK real ids of V) and whose logits favour the
    padding rows, [MASK] and pad: a sampler that looked only at the logits would emit them."""

    TOK = 50

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(x.sum()))
        logits = torch.randn(*x.shape, V, generator=g)
        logits[..., self.TOK:] += 8.0  # padding rows, EOS 61, PAD 62, MASK 63
        return logits


EVERY_STRATEGY = {
    "greedy": dict(temperature=0.0, schedule="even"),
    "sampled": dict(temperature=1.0, top_k=5),
    "choice_noise": dict(temperature=1.0, choice_noise=2.0),
    "margin": dict(confidence="margin"), "entropy": dict(confidence="entropy"), "random": dict(confidence="random"),
    "threshold": dict(threshold=0.2), "fast_dllm": dict(unmasking="fast_dllm", threshold=0.2),
    "ancestral": dict(unmasking="ancestral"),
    "moment": dict(unmasking="moment", moment_alpha=1.0, moment_hybrid=0.5, moment_substeps=2),
    "remdm": dict(remdm_eta=0.3), "guidance": dict(guidance_scale=2.0),
}


@pytest.mark.parametrize("strategy", sorted(EVERY_STRATEGY))
def test_no_strategy_emits_padding_rows_mask_or_pad(strategy):
    x = torch.cat([torch.randint(0, 40, (3, 4)), torch.full((3, 12), MASK)], dim=1)
    cfg = MDLMGenerationConfig(steps=6, block_length=6, **EVERY_STRATEGY[strategy])
    out = generate(PaddedHead(), x, mask_id=MASK, config=cfg, suppress_tokens=[PAD],
                   vocab_size=PaddedHead.TOK, generator=torch.Generator().manual_seed(0))
    gen = out.sequences[:, 4:]
    assert (gen < PaddedHead.TOK).all() and not (gen == MASK).any() and not (gen == PAD).any()


def test_text_pipeline_never_emits_ids_beyond_the_tokenizer():
    from mdlm.pipelines.text import generate_text

    class Tok:  # 50 real ids; the model's head is 64 wide
        mask_token_id, pad_token_id, eos_token_id = 49, 48, 47

        def __len__(self):
            return 50

        def __call__(self, s, add_special_tokens=False):
            return {"input_ids": [ord(c) % 40 for c in s]}

        def decode(self, ids, skip_special_tokens=True):
            assert all(int(i) < 50 for i in ids)
            return " ".join(map(str, ids))

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None, position_ids=None):
            return PaddedHead()(input_ids)

    texts, out = generate_text(Model(), Tok(), ["ab", ""], MDLMGenerationConfig(steps=4, stop_at_eos=False), 8)
    gen = out.sequences[:, -8:]
    assert (gen < 50).all() and not ((gen == 48) | (gen == 49)).any() and len(texts) == 2  # nor pad / [MASK]


# ---------------------------------------------------------------------------------------------- autograd


def test_generate_runs_under_inference_mode_and_returns_plain_tensors():
    seen = []

    def f(x):
        seen.append(torch.is_inference_mode_enabled())
        return torch.randn(*x.shape, V, generator=torch.Generator().manual_seed(0), requires_grad=True)

    x = torch.full((1, 6), MASK)
    out = generate(f, x, mask_id=MASK, config=MDLMGenerationConfig(steps=3, temperature=0.0))
    assert seen and all(seen)
    out.sequences[0, 0] = 1  # callers may change the result in place (not an inference tensor)
    assert not out.sequences.is_inference()
