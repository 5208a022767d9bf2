"""The lm-eval-harness adapter (mdlm/evaluation/lm_eval_adapter.py) on a tiny random checkpoint and a
tiny local multiple-choice task (YAML + JSONL in a tmp dir, no hub access)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("lm_eval", reason="lm-eval is not installed: pip install -e \".[eval]\"")

from lm_eval.api.instance import Instance  # noqa: E402

from mdlm import MDLMConfig, MDLMForMaskedLM  # noqa: E402
from mdlm.tokenizers.text import padded_vocab_size, train_bpe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = [
    "the cat sat on the mat.", "the dog ran in the park.", "a bird sang in the tree.",
    "the sun is hot and the snow is cold.", "fish swim in the sea.", "cows eat grass in the field.",
] * 4
ROWS = [
    {"question": "The cat sat on the", "choices": ["mat", "sea", "tree"], "label": 0},
    {"question": "Fish swim in the", "choices": ["park", "sea", "grass"], "label": 1},
    {"question": "The sun is", "choices": ["cold", "blue", "hot"], "label": 2},
    {"question": "Cows eat", "choices": ["grass", "fish", "snow"], "label": 0},
]
TASK_YAML = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("lmeval_ckpt")
    tok = train_bpe(CORPUS, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=padded_vocab_size(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=32, mask_token_id=tok.mask_token_id,
                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    MDLMForMaskedLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("lmeval_tasks")
    (d / "tiny_mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    (d / "tiny_mc.yaml").write_text(TASK_YAML.format(data=json.dumps(str(d / "tiny_mc.jsonl"))), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def lm(ckpt):
    from mdlm.evaluation.lm_eval_adapter import MDLMEvalLM

    return MDLMEvalLM(pretrained=str(ckpt), device="cpu", batch_size=4, mc_num=4, seed=0)


def _req(kind: str, args: tuple, i: int = 0) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=i)


def test_registered_by_name():
    from lm_eval.api.registry import get_model

    from mdlm.evaluation.lm_eval_adapter import MDLMEvalLM

    assert get_model("mdlm") is MDLMEvalLM


def test_loglikelihood_shape_sign_and_determinism(lm):
    reqs = [_req("loglikelihood", ("The cat sat on the", " mat")), _req("loglikelihood", ("Fish swim", " in the sea.")),
            _req("loglikelihood", ("", " the dog")), _req("loglikelihood", ("The sun is ", "hot"))]
    a = lm.loglikelihood(reqs)
    b = lm.loglikelihood(reqs)
    assert a == b  # fixed seed → identical numbers
    assert len(a) == 4 and all(isinstance(ll, float) and isinstance(g, bool) for ll, g in a)
    assert all(ll < 0 for ll, _ in a)
    # an empty continuation has probability 1
    assert lm.loglikelihood([_req("loglikelihood", ("The cat", ""))]) == [(0.0, True)]
    # the trailing space of a context moves onto the continuation, so these are the same request
    # (the noise is drawn per batch, so compare batches of the same shape)
    one = lm.loglikelihood([_req("loglikelihood", ("The sun is", " hot"))])
    assert one == lm.loglikelihood([_req("loglikelihood", ("The sun is ", "hot"))])
    assert one[0][0] == pytest.approx(a[3][0], rel=0.05)  # another noise draw, nearly the same bound


def test_longer_continuation_is_less_likely(lm):
    """An untrained model pays about log V nats per token; ten more random tokens must cost more."""
    g = torch.Generator().manual_seed(1)
    words = ["cat", "sea", "snow", "grass", "tree", "park", "bird", "sun"]
    extra = " " + " ".join(words[i] for i in torch.randint(len(words), (10,), generator=g).tolist())
    short, long = lm.loglikelihood([_req("loglikelihood", ("The cat sat on the", " mat")),
                                    _req("loglikelihood", ("The cat sat on the", " mat" + extra))])
    assert long[0] < short[0] - 5.0


def test_context_is_never_masked_and_truncated_from_the_left(lm):
    seen = []
    hook = lm.model.register_forward_pre_hook(lambda mod, args, kw: seen.append(kw["input_ids"].clone()),
                                              with_kwargs=True)
    try:
        ctx = " ".join(["the cat sat on the mat."] * 12)  # longer than the 32-token window
        cont = " fish swim"
        lm.loglikelihood([_req("loglikelihood", (ctx, cont))])
    finally:
        hook.remove()
    n_cont = len(lm._encode(cont))
    assert len(seen) == lm.mc_num + 1  # K ELBO samples + the greedy check
    for x in seen:
        assert x.shape == (1, lm.max_length)
        assert not (x[:, :-n_cont] == lm.mask_id).any()  # context positions never masked
    assert all((x[:, -n_cont:] == lm.mask_id).any() for x in seen)  # every pass masks ≥ 1 continuation token
    assert (seen[-1][:, -n_cont:] == lm.mask_id).all()  # greedy check: whole continuation masked


def test_batching_pads_without_changing_the_layout(lm):
    """A batch of ragged requests runs; each row's continuation sits at the right end."""
    reqs = [_req("loglikelihood", ("The cat", " sat on the mat")), _req("loglikelihood", ("A", " bird"))]
    out = lm.loglikelihood(reqs)
    assert len(out) == 2 and all(ll < 0 for ll, _ in out)


@pytest.mark.filterwarnings("ignore:steps=.*exceeds")
def test_rolling_and_generate(lm):
    text = " ".join(["the cat sat on the mat."] * 10)  # > 32 tokens → several windows
    (ll,) = lm.loglikelihood_rolling([_req("loglikelihood_rolling", (text,))])
    (ll1,) = lm.loglikelihood_rolling([_req("loglikelihood_rolling", ("the cat sat on the mat.",))])
    assert ll < ll1 < 0
    (gen,) = lm.generate_until([_req("generate_until", ("The cat", {"until": ["."], "max_gen_toks": 6}))])
    assert isinstance(gen, str) and "." not in gen


def test_simple_evaluate_on_a_local_task(lm, task_dir):
    import lm_eval
    from lm_eval.tasks import TaskManager

    res = lm_eval.simple_evaluate(model=lm, tasks=["tiny_mc"], task_manager=TaskManager(include_path=str(task_dir),
                                  include_defaults=False), log_samples=False, bootstrap_iters=0)
    acc = res["results"]["tiny_mc"]["acc,none"]
    assert 0.0 <= acc <= 1.0
    assert res["n-samples"]["tiny_mc"]["effective"] == len(ROWS)


@pytest.mark.slow
def test_cli(ckpt, task_dir, tmp_path):
    out = tmp_path / "res.json"
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, str(ROOT / "eval" / "lm_eval_run.py"), "--model", str(ckpt), "--tasks", "tiny_mc",
                        "--include-path", str(task_dir), "--mc-num", "2", "--limit", "2", "--device", "cpu",
                        "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "tiny_mc" in r.stdout
    assert 0.0 <= json.loads(out.read_text())["results"]["tiny_mc"]["acc,none"] <= 1.0
