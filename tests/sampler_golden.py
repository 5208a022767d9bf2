"""Fixed-seed outputs of the sampler over every strategy (the bit-identical check of the sampler redesign).

``python tests/sampler_golden.py --write`` records ``tests/fixtures/sampler_golden.json``;
``tests/test_sampling_golden.py`` re-runs every case and compares sequences, NFE, steps and positions.
Cases are written in the checkpoint-file vocabulary (``MDLMGenerationConfig.from_dict`` keys, old names
included, so the legacy-key mapping is exercised too). A tiny random ``MDLMForMaskedLM`` (2 layers, float64)
decodes a ragged left-padded batch of three prompts.

Why float64: the fixture was first recorded in float32 with the sampler before its split, and the split matched it
bit for bit on that machine; on an AVX-512 machine (2026-11-30) 12 of the 38 float32 cases differed, and on one
machine 15 cases changed with MKL / ATen's instruction set alone (``MKL_ENABLE_INSTRUCTIONS``,
``ATEN_CPU_CAPABILITY``): the third prompt is empty, so its all-[MASK] positions differ only through RoPE and their
confidences tie within float32 rounding. In float64 every case decodes the same under AVX-512, AVX2 and SSE4.2
dispatch, so the fixture was re-recorded in float64 with the current sampler (the regression guard from then on;
22 of its 37 cases, 96 of 111 rows, equal the float32 recording — the others differ in tie-prone rows).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import torch

V, MASK, PAD, EOS = 64, 63, 62, 61
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sampler_golden.json")
# torch's version the fixture was recorded with: another version may compute the random model's logits differently in
# the last bit, which can move argmax ties; the comparison is only meaningful on the same torch.
FIXTURE_META = FIXTURE.replace(".json", ".meta.json")

GREEDY = {"schedule": "even", "temperature": 0.0}
SAMPLE = {"schedule": "cosine", "temperature": 1.0}

# name → (sampler settings, extra call options)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "llada_blocks_eos": ({**GREEDY, "steps": 16, "block_length": 8}, {"eos": True}),
    "llada_blocks_noeos": ({**GREEDY, "steps": 12, "block_length": 8}, {}),
    "llada_one_block_uneven": ({**GREEDY, "steps": 7}, {"eos": True}),
    "greedy_threshold": ({**GREEDY, "steps": 16, "block_length": 8, "threshold": 0.2}, {"eos": True}),
    "greedy_cosine_plain_callable": ({"schedule": "cosine", "temperature": 0.0, "steps": 8}, {"plain": True}),
    "maskgit_choice_noise": ({**SAMPLE, "steps": 8, "choice_temperature": 2.0}, {}),
    "maskgit_constant_noise": ({**SAMPLE, "steps": 8, "choice_temperature": 1.0, "choice_anneal": False}, {}),
    "margin": ({**SAMPLE, "steps": 8, "confidence": "margin", "block_length": 8}, {"eos": True}),
    "entropy": ({**SAMPLE, "steps": 8, "confidence": "entropy"}, {}),
    "confidence_random": ({**SAMPLE, "steps": 8, "confidence": "random"}, {}),
    "remasking_random": ({**SAMPLE, "steps": 8, "remasking": "random"}, {}),
    "ancestral": ({**SAMPLE, "steps": 8, "remasking": "ancestral", "block_length": 8}, {}),
    "ancestral_even": ({"schedule": "even", "temperature": 1.0, "steps": 6, "remasking": "ancestral"}, {}),
    "threshold_sampled": ({**SAMPLE, "steps": 12, "threshold": 0.1, "block_length": 8}, {"eos": True}),
    "threshold_entropy": ({**SAMPLE, "steps": 12, "threshold": -1.5, "confidence": "entropy"}, {}),
    "top_k_top_p": ({**SAMPLE, "steps": 8, "top_k": 5, "top_p": 0.8}, {}),
    "moment": ({**SAMPLE, "steps": 8, "sampler": "moment", "choice_temperature": 1.0}, {}),
    "moment_hybrid": ({**SAMPLE, "steps": 8, "sampler": "moment", "choice_temperature": 0.5, "hybrid": 0.5,
                       "block_length": 8}, {}),
    "moment_greedy": ({"schedule": "linear", "temperature": 0.0, "steps": 8, "sampler": "moment"}, {}),
    "moment_substeps": ({**SAMPLE, "steps": 6, "sampler": "moment", "choice_temperature": 1.0, "substeps": 3}, {}),
    "moment_partial_cache": ({**SAMPLE, "steps": 6, "sampler": "moment", "choice_temperature": 1.0, "substeps": 2,
                              "partial_cache": True}, {}),
    "moment_partial_cache_cfg": ({**SAMPLE, "steps": 6, "sampler": "moment", "choice_temperature": 1.0,
                                  "substeps": 2, "partial_cache": True, "cfg_scale": 1.0}, {}),
    "remdm_low_conf": ({**SAMPLE, "steps": 10, "remask_committed": 0.3, "block_length": 8}, {}),
    "remdm_random_interval": ({**SAMPLE, "steps": 10, "remask_committed": 0.4, "remask_strategy": "random",
                               "remask_interval": [0.2, 0.9]}, {}),
    "cfg_interval": ({**SAMPLE, "steps": 8, "cfg_scale": 1.5, "cfg_interval": [0.2, 0.9]}, {}),
    "cfg_schedule_time_unbatched": ({**SAMPLE, "steps": 8, "cfg_scale": 2.0, "cfg_interval": [0.1, 0.7],
                                     "cfg_time": "schedule", "cfg_batch": False}, {}),
    "cfg_greedy_llada": ({**GREEDY, "steps": 16, "block_length": 8, "cfg_scale": 1.0}, {}),
    "no_reuse_logits": ({**SAMPLE, "steps": 8, "reuse_logits": False, "threshold": 0.5}, {}),
    "dual_greedy": ({**GREEDY, "steps": 16, "block_length": 4, "cache": "dual"}, {"eos": True}),
    "prefix_greedy": ({**GREEDY, "steps": 16, "block_length": 4, "cache": "prefix"}, {}),
    "dual_threshold": ({**GREEDY, "steps": 16, "block_length": 8, "cache": "dual", "threshold": 0.2}, {}),
    "dual_sampled_cfg": ({**SAMPLE, "steps": 8, "block_length": 8, "cache": "dual", "cfg_scale": 1.0}, {}),
    "prefix_sampled_cfg_unbatched": ({**SAMPLE, "steps": 8, "block_length": 8, "cache": "prefix", "cfg_scale": 1.0,
                                      "cfg_batch": False, "cfg_interval": [0.3, 1.0]}, {}),
    "prefix_moment": ({**SAMPLE, "steps": 8, "block_length": 8, "cache": "prefix", "sampler": "moment",
                       "choice_temperature": 1.0}, {}),
    "graphs_off": ({**GREEDY, "steps": 16, "block_length": 8, "cuda_graphs": False}, {}),
    "image_like": ({**SAMPLE, "steps": 6, "cfg_scale": 2.0, "choice_temperature": 3.0}, {"image": True}),
    "history": ({**SAMPLE, "steps": 5, "return_history": True}, {"image": True}),
}


def tiny_model():
    from mdlm.modeling import MDLMConfig, MDLMForMaskedLM

    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=64, mask_token_id=MASK, pad_token_id=PAD,
                     eos_token_id=EOS, initializer_range=0.3)
    m = MDLMForMaskedLM(cfg).eval().to(torch.float64)  # float32 ties move with the CPU's kernels (docstring)
    m.config._attn_implementation = "sdpa"
    return m


def text_canvas(gen_length: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three left-padded prompts of 5, 2 and 0 tokens + ``gen_length`` [MASK]: canvas, attention mask, prompt mask."""
    g = torch.Generator().manual_seed(7)
    lens = [5, 2, 0]
    P = max(lens)
    x = torch.full((3, P + gen_length), PAD)
    am = torch.zeros(3, P + gen_length, dtype=torch.long)
    prompt = torch.zeros(3, P + gen_length, dtype=torch.bool)
    for i, n in enumerate(lens):
        x[i, P - n:P] = torch.randint(0, 60, (n,), generator=g)
        am[i, P - n:] = 1
        prompt[i, P - n:P] = True
    x[:, P:] = MASK
    return x, am, prompt


def image_canvas() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class token at column 0 (ids 50, 51, [MASK] = unconditional) + 12 generated positions."""
    x = torch.full((3, 13), MASK)
    x[0, 0], x[1, 0] = 50, 51
    gen = torch.zeros(3, 13, dtype=torch.bool)
    gen[:, 1:] = True
    cond = torch.zeros(3, 13, dtype=torch.bool)
    cond[:2, 0] = True
    return x, gen, cond


def make_config(settings: dict[str, Any]):
    try:
        from mdlm.sampling.config import MDLMGenerationConfig
    except ImportError:  # the sampler before the redesign (how the fixture was recorded)
        from mdlm.sampling import SamplerConfig

        return SamplerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    return MDLMGenerationConfig.from_dict(settings)


def run_case(model, name: str) -> dict[str, Any]:
    from mdlm.sampling import generate

    settings, opts = CASES[name]
    config = make_config(settings)
    g = torch.Generator().manual_seed(1234)
    kw: dict[str, Any] = {"mask_id": MASK, "config": config, "generator": g}
    if opts.get("image"):
        x, gen, cond = image_canvas()
        kw.update(generate_mask=gen, cond_mask=cond, suppress_tokens=list(range(48, 64)))
    else:
        x, am, prompt = text_canvas()
        kw.update(attention_mask=am, cond_mask=prompt, suppress_tokens=[PAD])
        if opts.get("eos"):
            kw["eos_id"] = EOS
    fn = (lambda ids: model(input_ids=ids).logits) if opts.get("plain") else model
    if opts.get("plain"):
        kw.pop("attention_mask")
        kw["cond_mask"] = None
    with torch.no_grad():
        out = generate(fn, x, **kw)
    rec = {"sequences": out.sequences.tolist(), "nfe": out.nfe, "steps": out.steps, "positions": out.positions}
    if out.history is not None:
        rec["history"] = [h.tolist() for h in out.history]
    return rec


def record_all() -> dict[str, Any]:
    torch.set_num_threads(1)
    model = tiny_model()
    return {name: run_case(model, name) for name in CASES}


if __name__ == "__main__":
    if "--write" in sys.argv:
        os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
        with open(FIXTURE, "w") as f:
            json.dump(record_all(), f)
        with open(FIXTURE_META, "w") as f:
            json.dump({"torch": torch.__version__, "dtype": "float64"}, f)
        print(f"wrote {FIXTURE} and {FIXTURE_META}")
