"""SFT data for a masked-diffusion LM, LLaDA-style (Nie et al. 2025, "Large Language Diffusion
Models", Sec. 2.3 "Supervised Fine-Tuning" and App. B.1; also LLaDA's GUIDELINES.md, "SFT").

Each example is ``prompt ‖ response ‖ EOS…`` with three aligned per-token fields:

* ``input_ids``;
* ``attention_mask`` (1 = attended);
* ``prompt_mask`` (True on prompt tokens: never masked, never scored).

The loss region is ``attention_mask & ~prompt_mask`` (the collator returns it as ``eligible``); the
lead's loss normalises by its size per row, i.e. by the response length.

Chat format
    When ``tokenizer.chat_template`` is set, the prompt is
    ``apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)`` (the template
    supplies any BOS text). Otherwise the plain-text :data:`PLAIN_TEMPLATE` is used — role markers are
    ordinary text (``<|user|>`` etc. are *not* special tokens; a byte-level BPE encodes them as a few
    tokens), one turn per block::

        <|system|>\\n{system}\\n<|user|>\\n{prompt}\\n<|assistant|>\\n{response}<EOS>

    with BOS prepended only when the tokenizer has a BOS distinct from its EOS. The response is the
    last (assistant) message. Prompt and response are tokenised separately (no special tokens added)
    and concatenated, so the prompt/response boundary is exact and the prompt tokens match what
    generation will see.

EOS / padding (``pad_policy``)
    ``"eos"`` (default, LLaDA): the response is followed by EOS tokens up to the padded length; they
    are attended (``attention_mask`` 1) and count as response (``prompt_mask`` False), so they are
    masked and scored and the model learns to emit EOS padding after its answer.
    ``"mask"``: the response gets exactly one EOS (scored), then ``pad_token_id`` padding with
    ``attention_mask`` 0 — never attended, masked or scored.
    ``padding="max_length"`` (default) pads each example to ``max_length`` as it is tokenised;
    ``padding="longest"`` leaves it unpadded and :class:`SFTCollator` pads each batch to its longest
    row with the same policy (LLaDA pads EOS "within each mini-batch").
    ``SFTCollator(response_length=R)`` (``"eos"`` only) instead gives every row a response canvas of
    exactly R positions — the answer, then EOS to ``prompt + R`` — as a decoder with ``gen_length=R``
    sees it, so the model learns to fill a whole canvas with EOS after its answer (what makes EOS-aware
    and threshold decoding commit the tail in few steps); positions after a row's canvas (shorter
    prompts in the batch) are not attended and not scored.

Truncation
    A prompt of ``max_length`` tokens or more leaves no room for a response: by default
    (``truncate_prompt="error"``) a ValueError names both lengths; ``truncate_prompt="left"`` keeps the
    prompt's tail, leaving ``min(response tokens + 1, max_length // 2)`` positions for the response.
    A response that does not fit in the room left is cut on the right and then gets NO EOS (the model is
    never taught to stop mid-answer); under ``"eos"`` a cut row is therefore exactly ``max_length``
    long with no EOS at all.

Special ids always come from the tokenizer (``eos_token_id``, ``pad_token_id``), never literals.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal

import torch
from datasets import Dataset, load_dataset
from transformers import PreTrainedTokenizerBase

PadPolicy = Literal["eos", "mask"]
Padding = Literal["max_length", "longest"]
TruncatePrompt = Literal["error", "left"]
Message = Mapping[str, str]

ROLES = ("system", "user", "assistant")
PLAIN_TEMPLATE = "<|{role}|>\n{content}\n"  # one turn; the prompt ends with the generation header
PLAIN_GENERATION_PROMPT = "<|assistant|>\n"
# The same rendering as a Jinja chat template (for ``tokenizer.chat_template = PLAIN_CHAT_TEMPLATE``).
PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


# ------------------------------------------------------------------------------------- rendering
def to_messages(prompt: str, response: str, system: str | None = None) -> list[dict[str, str]]:
    """A single-turn conversation ``[system?, user, assistant]``."""
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> str:
    """The prompt text for ``messages`` (a conversation ending with the turn to answer, i.e. WITHOUT
    the final assistant message), ending with the assistant generation header."""
    if getattr(tokenizer, "chat_template", None):
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    turns = "".join(PLAIN_TEMPLATE.format(role=m["role"], content=m["content"]) for m in messages)
    return turns + PLAIN_GENERATION_PROMPT


def _bos(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """[BOS] for the plain template when the tokenizer has a BOS distinct from EOS, else []."""
    if getattr(tokenizer, "chat_template", None):
        return []
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return [bos] if bos is not None and bos != eos else []


def format_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, system: str | None = None) -> str:
    """The text a chat (instruction-tuned) model is prompted with for one user turn: the same rendering
    as the prompt part of an SFT example (:func:`render_prompt` of ``[system?, user]``, ending with the
    assistant generation header), with the BOS *text* in front where SFT encoding prepends BOS.

    ``tokenizer(format_prompt(tok, p), add_special_tokens=False)["input_ids"]`` equals the prompt ids
    :func:`encode_sft_example` produces for ``to_messages(p, response)`` (special-token text such as
    the BOS string is matched as that token by HF tokenizers)."""
    messages = to_messages(prompt, "", system)[:-1]
    bos = tokenizer.bos_token if _bos(tokenizer) else ""
    return bos + render_prompt(tokenizer, messages)


# ------------------------------------------------------------------------------------ tokenising
def _check_policy(tokenizer: PreTrainedTokenizerBase, pad_policy: str, padding: str, truncate_prompt: str) -> None:
    if tokenizer.eos_token_id is None:
        raise ValueError("SFT formatting needs a tokenizer with an EOS token")
    if pad_policy not in ("eos", "mask"):
        raise ValueError(f"pad_policy must be 'eos' or 'mask', got {pad_policy!r}")
    if pad_policy == "mask" and tokenizer.pad_token_id is None:
        raise ValueError("pad_policy='mask' needs a tokenizer with a pad token")
    if padding not in ("max_length", "longest"):
        raise ValueError(f"padding must be 'max_length' or 'longest', got {padding!r}")
    if truncate_prompt not in ("error", "left"):
        raise ValueError(f"truncate_prompt must be 'error' or 'left', got {truncate_prompt!r}")


def assemble(
    prompt_ids: Sequence[int],
    response_ids: Sequence[int],
    *,
    eos_token_id: int,
    pad_token_id: int | None,
    max_length: int,
    pad_policy: PadPolicy = "eos",
    padding: Padding = "max_length",
    truncate_prompt: TruncatePrompt = "error",
) -> dict[str, Any]:
    """Join already-tokenised prompt and response into one SFT feature (policies: module docstring).
    Returns ``input_ids``, ``attention_mask``, ``prompt_mask``, ``length`` (attended tokens) and
    ``prompt_length``."""
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    prompt_ids, response_ids = list(prompt_ids), list(response_ids)
    if len(prompt_ids) >= max_length:
        if truncate_prompt != "left":
            raise ValueError(
                f"prompt is {len(prompt_ids)} tokens but max_length is {max_length}: the prompt must be "
                f"shorter than max_length to leave room for a response (raise max_length or pass "
                f"truncate_prompt='left' to keep the prompt's tail)"
            )
        keep = max_length - min(len(response_ids) + 1, max_length // 2)
        prompt_ids = prompt_ids[len(prompt_ids) - keep :]
    room = max_length - len(prompt_ids)
    resp = response_ids + [eos_token_id] if len(response_ids) < room else response_ids[:room]
    ids = prompt_ids + resp
    attn = [1] * len(ids)
    n_pad = max_length - len(ids) if padding == "max_length" else 0
    if pad_policy == "eos":
        ids += [eos_token_id] * n_pad
        attn += [1] * n_pad
    else:
        if pad_token_id is None:
            raise ValueError("pad_policy='mask' needs a pad_token_id")
        ids += [pad_token_id] * n_pad
        attn += [0] * n_pad
    n_prompt = len(prompt_ids)
    return {
        "input_ids": ids,
        "attention_mask": attn,
        "prompt_mask": [True] * n_prompt + [False] * (len(ids) - n_prompt),
        "length": sum(attn),
        "prompt_length": n_prompt,
    }


def encode_sft_example(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[Message],
    *,
    max_length: int,
    pad_policy: PadPolicy = "eos",
    padding: Padding = "max_length",
    truncate_prompt: TruncatePrompt = "error",
) -> dict[str, Any]:
    """Tokenise one conversation whose last message is the assistant response (see
    :func:`to_messages` for a prompt/response pair) into an SFT feature (:func:`assemble`)."""
    _check_policy(tokenizer, pad_policy, padding, truncate_prompt)
    _check_messages(messages, where="messages")
    prompt = _bos(tokenizer) + tokenizer(render_prompt(tokenizer, messages[:-1]), add_special_tokens=False)["input_ids"]
    response = tokenizer(messages[-1]["content"], add_special_tokens=False)["input_ids"]
    return assemble(
        prompt,
        response,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_length=max_length,
        pad_policy=pad_policy,
        padding=padding,
        truncate_prompt=truncate_prompt,
    )


def tokenize_sft_dataset(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    pad_policy: PadPolicy = "eos",
    padding: Padding = "max_length",
    truncate_prompt: TruncatePrompt = "error",
    keep_columns: Sequence[str] = (),
    num_proc: int | None = None,
) -> Dataset:
    """Map a dataset with ``prompt``/``response`` (optionally ``system``) or ``messages`` columns to SFT
    features (batched tokenisation). Other columns are dropped unless named in ``keep_columns``."""
    _check_policy(tokenizer, pad_policy, padding, truncate_prompt)
    cols = set(dataset.column_names)
    if "messages" not in cols and not {"prompt", "response"} <= cols:
        raise ValueError(f"dataset needs 'messages' or 'prompt'+'response' columns, has {sorted(cols)}")
    bos = _bos(tokenizer)

    def encode(batch: dict[str, list], idx: list[int]) -> dict[str, list]:
        if "messages" in batch:
            convs = batch["messages"]
            for i, c in zip(idx, convs):
                _check_messages(c, where=f"row {i}")
        else:
            systems = batch.get("system") or [None] * len(batch["prompt"])
            convs = [to_messages(p, r, s) for p, r, s in zip(batch["prompt"], batch["response"], systems)]
        prompts = tokenizer([render_prompt(tokenizer, c[:-1]) for c in convs], add_special_tokens=False)["input_ids"]
        responses = tokenizer([c[-1]["content"] for c in convs], add_special_tokens=False)["input_ids"]
        feats = [
            assemble(
                bos + p,
                r,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                max_length=max_length,
                pad_policy=pad_policy,
                padding=padding,
                truncate_prompt=truncate_prompt,
            )
            for p, r in zip(prompts, responses)
        ]
        return {k: [f[k] for f in feats] for k in feats[0]} if feats else {}

    drop = [c for c in dataset.column_names if c not in keep_columns]
    return dataset.map(
        encode, batched=True, with_indices=True, remove_columns=drop, num_proc=num_proc, desc="tokenising SFT"
    )


# ------------------------------------------------------------------------------------ JSONL input
def _check_messages(messages: Any, where: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"{where}: message {i} must be {{'role': one of {ROLES}, 'content': str}}, got {m!r}")
    if messages[-1]["role"] != "assistant":
        raise ValueError(f"{where}: the last message must be the assistant's response")
    if not any(m["role"] == "user" for m in messages[:-1]):
        raise ValueError(f"{where}: no user message before the final assistant message")


def validate_sft_jsonl(path: str | os.PathLike) -> str:
    """Check every line of a JSONL file; returns its format, ``"messages"`` or ``"prompt_response"``.
    Blank lines are allowed. Raises ValueError naming the file and 1-based line number of the first
    bad line (invalid JSON, not an object, missing/ill-typed fields, or a format different from the
    file's first example)."""
    fmt: str | None = None
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}, line {n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            if "messages" in obj:
                _check_messages(obj["messages"], where)
                this = "messages"
            elif isinstance(obj.get("prompt"), str) and isinstance(obj.get("response"), str):
                this = "prompt_response"
            else:
                raise ValueError(f"{where}: expected string 'prompt' and 'response' fields or a 'messages' list")
            if fmt is not None and this != fmt:
                raise ValueError(f"{where}: {this!r} example in a file of {fmt!r} examples")
            fmt = this
    if fmt is None:
        raise ValueError(f"{path}: no examples")
    return fmt


def load_sft_jsonl(paths: str | os.PathLike | Sequence[str | os.PathLike], *, cache_dir: str | None = None) -> Dataset:
    """Validate (:func:`validate_sft_jsonl`) then load JSONL file(s) through ``datasets``; all files must
    share one format. The result has ``prompt``/``response`` or ``messages`` columns, ready for
    :func:`tokenize_sft_dataset`."""
    files = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    formats = {f: validate_sft_jsonl(f) for f in files}
    if len(set(formats.values())) > 1:
        raise ValueError(f"SFT files mix formats: {formats}")
    return load_dataset("json", data_files=files, split="train", cache_dir=cache_dir)


# -------------------------------------------------------------------------------------- collator
def check_response_length(response_length: int | None, pad_policy: str) -> None:
    """ValueError unless ``response_length`` is unset, or ≥ 1 with ``pad_policy="eos"`` (the canvas is EOS-filled)."""
    if response_length is None:
        return
    if response_length < 1:
        raise ValueError(f"response_length must be at least 1, got {response_length}")
    if pad_policy != "eos":
        raise ValueError("response_length (a response canvas filled with EOS) needs pad_policy='eos'")


@dataclass
class SFTCollator:
    """Pad SFT features to the batch's longest row (optionally a multiple of ``pad_to_multiple_of``)
    with the module's ``pad_policy``; returns ``input_ids`` (long), ``attention_mask`` (long),
    ``prompt_mask`` (bool) and ``eligible`` = attended & not prompt (bool, the loss region; the key
    the lead's trainer reads). Features may be unpadded (``padding="longest"``) or already padded to
    ``max_length`` (then this only stacks them). Padding added here is response under ``"eos"`` —
    also after a row whose response was cut, when ``pad_to_multiple_of`` lengthens the batch."""

    eos_token_id: int
    pad_token_id: int | None = None
    pad_policy: PadPolicy = "eos"
    pad_to_multiple_of: int | None = None
    response_length: int | None = None

    def __post_init__(self) -> None:
        check_response_length(self.response_length, self.pad_policy)

    @classmethod
    def from_tokenizer(
        cls, tokenizer: PreTrainedTokenizerBase, pad_policy: PadPolicy = "eos", pad_to_multiple_of: int | None = None,
        response_length: int | None = None,
    ) -> SFTCollator:
        _check_policy(tokenizer, pad_policy, "longest", "error")
        return cls(tokenizer.eos_token_id, tokenizer.pad_token_id, pad_policy, pad_to_multiple_of, response_length)

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if self.response_length is not None:
            return self._canvas(features)
        lengths = torch.tensor([len(f["input_ids"]) for f in features], dtype=torch.long)
        L = int(lengths.max())
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        real = torch.arange(L)[None, :] < lengths[:, None]  # (B, L) positions the features fill

        def place(key: str, fill: int | bool, dtype: torch.dtype) -> torch.Tensor:
            out = torch.full((len(features), L), fill, dtype=dtype)
            out[real] = torch.tensor(list(chain.from_iterable(f[key] for f in features)), dtype=dtype)
            return out

        if self.pad_policy == "eos":
            pad_id, pad_attn = self.eos_token_id, 1
        elif self.pad_token_id is None:
            raise ValueError("pad_policy='mask' needs pad_token_id")
        else:
            pad_id, pad_attn = self.pad_token_id, 0
        ids = place("input_ids", pad_id, torch.long)
        if "attention_mask" in features[0]:
            attn = place("attention_mask", pad_attn, torch.long)
        else:
            attn = torch.where(real, 1, pad_attn).long()
        prompt = place("prompt_mask", False, torch.bool)
        return {"input_ids": ids, "attention_mask": attn, "prompt_mask": prompt, "eligible": attn.bool() & ~prompt}

    def _canvas(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Each row = prompt ‖ response ‖ EOS… filling exactly ``response_length`` positions after the
        prompt; a response longer than that is cut (and, like a row cut by ``max_length`` — one that does
        not end in EOS —, gets no EOS: its remaining canvas is not attended). Padding after the canvas is
        never attended."""
        R = int(self.response_length)
        n_prompt = torch.tensor([sum(map(bool, f["prompt_mask"])) for f in features], dtype=torch.long)  # (B,)
        real = [list(f["input_ids"])[: int(p) + R] for f, p in zip(features, n_prompt)]
        ends = torch.tensor([bool(r) and r[-1] == self.eos_token_id for r in real])  # (B,) the answer ended
        lengths = torch.tensor([len(r) for r in real], dtype=torch.long)  # (B,)
        canvas = n_prompt + R  # (B,)
        L = int(canvas.max())
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        pos = torch.arange(L)[None, :]  # (1, L)
        filled = pos < lengths[:, None]  # (B, L) the feature's own tokens
        fill = self.eos_token_id if self.pad_token_id is None else self.pad_token_id
        ids = torch.full((len(features), L), fill, dtype=torch.long)
        ids[filled] = torch.tensor(list(chain.from_iterable(real)), dtype=torch.long)
        eos_tail = (pos >= lengths[:, None]) & (pos < canvas[:, None]) & ends[:, None]  # (B, L)
        ids[eos_tail] = self.eos_token_id
        attn = (filled | eos_tail).long()
        prompt = pos < n_prompt[:, None]
        return {"input_ids": ids, "attention_mask": attn, "prompt_mask": prompt, "eligible": attn.bool() & ~prompt}
