"""Training step time of an adapted causal LM with the LM head at the masked positions only vs on every position.

    python eval/bench_masked_head.py                         # SmolLM2-135M's shape (30 layers), batch 2 x 256, CPU
    python eval/bench_masked_head.py --layers 4 --batch 4 --device cuda

A randomly initialised Llama of SmolLM2-135M's widths (vocabulary 49,152, hidden 576, 9 heads / 3 KV heads,
MLP 1,536), wrapped Dream-style by ``CausalBackboneForMaskedLM``; half the positions masked; one forward + backward
of the masked-token cross-entropy with the LM head at the masked positions only (``logits_positions``, as
``mdlm.training.trainer.masked_logits`` calls it) and on every position. Prints the best of ``--repeats`` step times
(s) of each.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from mdlm.cli import ArgumentParser, positive_int, run_cli


def step_time(model, noisy, targets, masked, at_masked: bool, sync) -> float:
    """Seconds of one forward + backward of the masked-token cross-entropy, the LM head at the masked positions
    only (the wrapper's ``logits_positions``, what training uses) or on every position, then indexed."""
    sync()
    t = time.perf_counter()
    if at_masked:
        logits = model(input_ids=noisy, logits_positions=masked).logits  # (M, V)
    else:
        logits = model(input_ids=noisy).logits[masked]  # (B, L, V) → (M, V)
    F.cross_entropy(logits.float(), targets[masked]).backward()
    model.zero_grad(set_to_none=True)
    sync()
    return time.perf_counter() - t


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=positive_int, default=30)
    p.add_argument("--batch", type=positive_int, default=2)
    p.add_argument("--seq-len", type=positive_int, default=256)
    p.add_argument("--repeats", type=positive_int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=positive_int, default=2)
    a = p.parse_args()
    from transformers import AutoModelForCausalLM, LlamaConfig

    from mdlm.modeling.causal_backbone import CausalBackboneConfig, CausalBackboneForMaskedLM

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    V = 49152
    lm = AutoModelForCausalLM.from_config(LlamaConfig(
        vocab_size=V, hidden_size=576, intermediate_size=1536, num_hidden_layers=a.layers, num_attention_heads=9,
        num_key_value_heads=3, tie_word_embeddings=True, max_position_embeddings=max(1024, a.seq_len + 1)))
    cfg = CausalBackboneConfig(backbone_config=lm.config, logit_alignment="dream", mask_token_id=V - 1, shift_token_id=0)
    model = CausalBackboneForMaskedLM(cfg, lm).to(a.device)
    targets = torch.randint(0, V - 1, (a.batch, a.seq_len), device=a.device)
    masked = torch.rand(a.batch, a.seq_len, device=a.device) < 0.5
    noisy = torch.where(masked, V - 1, targets)
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(a.repeats + 1):  # the first round warms up
        for at_masked in (True, False):
            t = step_time(model, noisy, targets, masked, at_masked, sync)
            if i:
                times[at_masked].append(t)
    head, full = min(times[True]), min(times[False])
    print(f"{a.layers} layers, batch {a.batch} x {a.seq_len}, {a.device}: masked-position head {head:.3f} s, "
          f"every position {full:.3f} s per step ({full / head:.2f}x)")
    return 0


if __name__ == "__main__":
    main()
