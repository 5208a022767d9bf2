"""The autoregressive baseline (mdlm/training/ar.py, recipes/train_text.py --objective ar, eval/ar_ppl.py)."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch

from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.training.ar import ar_nll, check_right_padded, shift_right

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--dataset", "shakespeare", "--tokenizer", "bpe", "--bpe_vocab_size", "384", "--max_train_documents", "120",
    "--seq_len", "64", "--hidden_size", "64", "--num_hidden_layers", "2", "--num_attention_heads", "2",
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--max_eval_sequences", "32",
    "--learning_rate", "0.004", "--warmup_steps", "5", "--logging_steps", "1",
    "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "0",
    "--dataloader_num_workers", "0", "--save_strategy", "no", "--sample_on_end", "0",
]


def _model(attn: str, causal: bool = True) -> MDLMForMaskedLM:
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=32, mask_token_id=3, is_causal=causal)
    cfg._attn_implementation = attn
    return MDLMForMaskedLM(cfg).eval()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_causal_logits_do_not_see_the_future(attn):
    model = _model(attn)
    x = torch.randint(4, 64, (2, 12))
    y = x.clone()
    y[:, 7:] = torch.randint(4, 64, (2, 5))  # change every token after position 6
    with torch.no_grad():
        a, b = model(input_ids=x).logits, model(input_ids=y).logits  # (2, 12, V)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-5)
    assert not torch.allclose(a[:, 7:], b[:, 7:], atol=1e-3)
    # the bidirectional model does see the future (the test above is not vacuous)
    bi = _model(attn, causal=False)
    with torch.no_grad():
        assert not torch.allclose(bi(input_ids=x).logits[:, :7], bi(input_ids=y).logits[:, :7], atol=1e-3)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_causal_with_padding_mask_stays_causal(attn):
    """A padding mask must not switch SDPA to bidirectional attention (it ignores is_causal given a mask)."""
    model = _model(attn)
    x = torch.randint(4, 64, (2, 12))
    am = torch.ones_like(x)
    am[1, :3] = 0  # left padding in row 1
    y = x.clone()
    y[:, 7:] = torch.randint(4, 64, (2, 5))
    with torch.no_grad():
        a, b = model(input_ids=x, attention_mask=am).logits, model(input_ids=y, attention_mask=am).logits
    assert torch.isfinite(a).all()
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-5)
    # the padded row equals the same tokens without padding (positions count real tokens only)
    with torch.no_grad():
        alone = model(input_ids=x[1:, 3:]).logits
    assert torch.allclose(a[1, 3:], alone[0], atol=1e-4)


def test_ar_nll_scores_every_token_given_the_start_token():
    model = _model("sdpa")
    x = torch.randint(4, 64, (3, 10))
    scored = torch.ones_like(x, dtype=torch.bool)
    scored[2, 6:] = False  # a right-padded row
    s, n = ar_nll(model, x, scored, start_id=0)
    assert n.tolist() == [10, 10, 6]
    with torch.no_grad():
        logp = model(input_ids=shift_right(x, 0)).logits.log_softmax(-1)  # (B, L, V)
    hand = -logp.gather(2, x[..., None])[..., 0]  # (B, L)
    assert torch.allclose(s, (hand * scored).sum(1), rtol=1e-5)
    check_right_padded(scored.long())
    with pytest.raises(ValueError, match="right-padded"):
        check_right_padded(torch.tensor([[0, 1, 1]]))


def _recipe():
    spec = importlib.util.spec_from_file_location("train_text", ROOT / "recipes" / "train_text.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ar_loss_falls_on_shakespeare_and_eval_is_exact(tmp_path):
    out = tmp_path / "ar"
    with redirect_stdout(io.StringIO()):
        trainer = _recipe().train(TINY + ["--objective", "ar", "--output_dir", str(out), "--max_steps", "30"])
    assert trainer.model.config.is_causal
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[0] > 5.5  # ≈ log(384) untrained
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 1.0
    final = json.loads((out / "eval_metrics.json").read_text())
    assert final["eval_nll"] < 5.0 and final["eval_ppl"] == pytest.approx(math.exp(final["eval_nll"]), rel=1e-6)
    # the saved model reloads causal; eval/ar_ppl.py reports the same exact figure on the same rows
    r = subprocess.run([sys.executable, str(ROOT / "eval" / "ar_ppl.py"), "--model", str(out), "--seq-len", "64",
                        "--max-sequences", "32", "--json", str(tmp_path / "a.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "a.json").read_text())
    assert res["ar"]["tokens"] == final["eval_tokens"] == 32 * 64
    assert res["ar"]["nats_per_token"] == pytest.approx(final["eval_nll"], rel=1e-4)


def test_unknown_objective_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="objective"):
        _recipe().train(TINY + ["--objective", "nope", "--output_dir", str(tmp_path / "x"), "--max_steps", "1"])
