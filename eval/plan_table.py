"""The memory and tokens-per-GPU table of the 125M / 350M / 1B configs at 1, 2, 8, 64 GPUs
(docs/training_at_scale.md), from the model shapes (mdlm.training.scaling) and the 350M figures measured by
eval/gpu/zero_scaling.sh. Called by ``python eval/zero_table.py --plan zero_scaling.json``."""

from __future__ import annotations

import os

import yaml

from mdlm.training.scaling import (
    GPU_COUNTS,
    Shape,
    hidden_share,
    step_overhead,
    memory_rows,
    param_count,
    throughput_rows,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ("gpt2_125m", "gpt2_350m", "gpt2_1b")
VOCAB = 50304  # GPT-2's 50,257 + pad + [MASK], padded to a multiple of 64 (mdlm.tokenizers.padded_vocab_size)
STAGE = {None: "plain AMP", 1: "ZeRO-1", 2: "ZeRO-2", 3: "ZeRO-3"}


def config_shape(name: str) -> tuple[Shape, int, int]:
    """(shape, micro-batch, seq_len) of recipes/configs/NAME.yaml."""
    with open(os.path.join(ROOT, "recipes", "configs", f"{name}.yaml"), encoding="utf-8") as f:
        c = yaml.safe_load(f)
    h = c["num_attention_heads"]
    s = Shape(c["hidden_size"], c["num_hidden_layers"], h, c.get("num_key_value_heads", h), c["intermediate_size"], VOCAB)
    return s, int(c["per_device_train_batch_size"]), int(c["seq_len"])


def flops_per_token(s: Shape, seq_len: int, share: float = 0.5) -> float:
    """Model FLOPs per trained token, the same terms as mdlm.training.throughput (blocks, attention, masked head)."""
    blocks = param_count(s)["blocks"] - s.hidden  # without the final norm
    return 6 * blocks + 12 * s.layers * seq_len * s.hidden + 6 * s.hidden * s.vocab * share


def memory_markdown() -> str:
    head = " | ".join(f"{g} GPU{'s' if g > 1 else ''}" for g in GPU_COUNTS)
    lines = ["Model states per GPU, GiB, as weights / grads / Adam (= total):", "",
             f"| config (params) | optimizer | {head} | activations GiB no ckpt / ckpt (micro-batch) |",
             "|---|---|" + "---|" * len(GPU_COUNTS) + "---|"]
    for name in CONFIGS:
        s, mb, seq = config_shape(name)
        n = param_count(s)["total"]
        for r in memory_rows(s, mb, seq):
            cells = " | ".join("{params:.1f} / {grads:.1f} / {optimizer:.1f} (= {t:.1f})".format(
                **r["states_gib"][g], t=sum(r["states_gib"][g].values())) for g in GPU_COUNTS)
            lines.append(f"| {name} ({n / 1e6:,.0f}M) | {STAGE[r['stage']]} | {cells} | "
                         f"{r['activations_gib']:.1f} / {r['activations_ckpt_gib']:.1f} ({mb}×{seq}) |")
    return "\n".join(lines)


def throughput_markdown(measured: dict) -> str:
    runs = measured.get("runs") or {}
    base = (runs.get("plain_1gpu") or {}).get("tokens_per_s_per_gpu")
    if not base:
        raise ValueError("the JSON has no measured plain_1gpu run: run eval/gpu/zero_scaling.sh first")
    s350, mb350, seq350 = config_shape("gpt2_350m")
    n350 = param_count(s350)["total"]
    two = {z: (runs.get(f"zero{z}_2gpu") or {}).get("tokens_per_s_per_gpu") for z in (1, 2, 3)}
    hidden = {z: hidden_share(base, t, mb350 * seq350, n350, z, 2) for z, t in two.items() if t}
    over = {z: step_overhead(base, t, mb350 * seq350, n350, z, 2, hidden[z]) for z, t in two.items() if t}
    fpt350 = flops_per_token(s350, seq350)
    lines = [f"| config | ZeRO | tokens/s per GPU: {' | '.join(str(g) for g in GPU_COUNTS)} |",
             "|---|---|" + "---|" * len(GPU_COUNTS)]
    for name in CONFIGS:
        s, mb, seq = config_shape(name)
        same = name == "gpt2_350m"
        tps1 = base if same else base * fpt350 / flops_per_token(s, seq)
        meas = {(z, 2): t for z, t in two.items() if t and same}
        meas.update({(z, 1): base for z in (1, 2, 3)} if same else {})
        n = param_count(s)["total"]
        scaled = {z: o * n / n350 for z, o in over.items()}  # overhead ∝ parameters gathered / reduced
        for r in throughput_rows(n, mb * seq, tps1, hidden, meas, overhead=scaled):
            cells = " | ".join(f"{v:,.0f}{'' if how == 'measured' else '*'}" for v, how in r["tokens_per_s"].values())
            lines.append(f"| {name} | {r['stage']} | {cells} |")
    shares = ", ".join(f"ZeRO-{z} {h:.0%}" for z, h in hidden.items())
    overs = ", ".join(f"ZeRO-{z} {o * 1e3:.0f} ms" for z, o in over.items())
    lines.append(f"\n\\* extrapolated (not measured): 1-GPU rate of another config = the measured 350M rate × the "
                 f"FLOPs-per-token ratio (same MFU); communication volume of ring collectives in bf16 over NVLink at "
                 f"360 GB/s inside an 8-GPU node and 400 Gb/s InfiniBand per GPU across nodes; share of the "
                 f"communication hidden behind compute calibrated from the measured 2-GPU runs ({shares or 'none'}); "
                 f"plus the per-step time the 2-GPU runs spent beyond compute and bandwidth ({overs or 'none'} at "
                 f"350M; scaled by parameter count for the other configs, and kept constant with the GPU count, which "
                 f"is optimistic). The 1-GPU ZeRO cells are the plain single-process rate.")
    return "\n".join(lines)


def estimate_check(measured: dict) -> str:
    """The 350M estimate (model states + activations) beside the measured torch peak of each run."""
    from mdlm.training.scaling import activation_bytes, state_bytes

    s, mb, seq = config_shape("gpt2_350m")
    n = param_count(s)["total"]
    act = activation_bytes(s, mb, seq) / 2**30
    lines = ["| 350M run | estimated GiB (states + activations) | measured peak allocated GiB per GPU |", "|---|---|---|"]
    for name, (stage, gpus) in {"plain_1gpu": (None, 1), "zero2_1gpu": (2, 1), "zero1_2gpu": (1, 2),
                                "zero2_2gpu": (2, 2), "zero3_2gpu": (3, 2)}.items():
        r = (measured.get("runs") or {}).get(name)
        est = sum(state_bytes(n, stage, gpus).values()) / 2**30 + act
        lines.append(f"| {name} | {est:.1f} | {r['peak_allocated_gib_per_rank'] if r else 'missing'} |")
    return "\n".join(lines)


def plan_markdown(measured: dict) -> str:
    return (memory_markdown() + "\n\n" + estimate_check(measured) + "\n\n" + throughput_markdown(measured) + "\n")
