"""Terminal chat: each answer's canvas redrawn in place as it unmasks, then a final answer line.

Ctrl-C while an answer is being drawn stops it (the sampler ends at its next step); the unfinished turn is
dropped and the conversation before it is kept. The history is trimmed to the model's context with a notice.
"""

from __future__ import annotations

import math
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import torch

from .conversation import Conversation, fit_prompt, has_chat_template
from .render import canvas_pieces, masked_count, printable, to_ansi
from .stream import Done, Frame, prompt_length, stream_text

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HELP = "Ctrl-C stops an answer · /reset clears the history · /quit or Ctrl-D leaves"


def screen_rows(text: str, width: int) -> int:
    """Terminal rows ``text`` occupies at ``width`` columns (ANSI codes take no room; long lines wrap)."""
    return sum(max(1, math.ceil(len(_ANSI.sub("", line)) / width)) for line in text.split("\n"))


class LiveArea:
    """A block of text at the bottom of a terminal, redrawn in place: cursor back to the block's first
    row, erase to the end of the screen, write the new text."""

    def __init__(self, out: TextIO, width: int | None = None):
        self.out, self.rows = out, 0
        self.width = width or shutil.get_terminal_size((100, 24)).columns

    def draw(self, text: str) -> None:
        self.clear()
        self.out.write(text)
        self.out.flush()
        self.rows = screen_rows(text, self.width)

    def clear(self) -> None:
        if self.rows:
            self.out.write("\r" + (f"\x1b[{self.rows - 1}A" if self.rows > 1 else "") + "\x1b[J")
            self.rows = 0


@dataclass
class ChatSession:
    """What a chat needs: the model, its tokenizer, the sampler config and answer length, the context."""

    model: torch.nn.Module
    tokenizer: object
    config: object
    gen_length: int
    context: int | None
    seed: int = 0
    conv: Conversation = field(default_factory=Conversation)
    frame_delay: float = 0.0  # seconds each drawn frame stays on screen at least (slow motion); 0: as fast as made


def _status(frame: Frame, masked: int, gen_length: int) -> str:
    return f"step {frame.step}/{frame.max_steps} · NFE {frame.nfe} · {masked}/{gen_length} masked"


def answer(s: ChatSession, user: str, out: TextIO, live: bool, color: bool = True) -> str | None:
    """Generate one answer to ``user`` after the conversation so far; draw its canvas at every step when
    ``live``. Returns the answer (also added to the conversation), or None when stopped with Ctrl-C."""
    prompt, dropped = fit_prompt(s.tokenizer, s.conv, user, s.gen_length, s.context)
    if dropped:
        print(f"[history trimmed: dropped the {dropped} oldest turn(s) to fit the context of {s.context} tokens]",
              file=out)
    P = prompt_length(s.tokenizer, prompt)
    area = LiveArea(out) if live else None
    stream = stream_text(s.model, s.tokenizer, prompt, s.config, s.gen_length, seed=s.seed)
    done: Done | None = None
    try:
        for item in stream:
            if isinstance(item, Done):
                done = item
            elif area is not None:
                pieces = canvas_pieces(s.tokenizer, item.canvas[0, P:], item.committed[0, P:])
                area.draw(f"{to_ansi(pieces, color)}\n[{_status(item, masked_count(pieces), s.gen_length)}]")
                if s.frame_delay > 0:
                    time.sleep(s.frame_delay)  # Ctrl-C here stops the answer like anywhere else
    except KeyboardInterrupt:
        stream.close()  # stops the sampler at its next step and waits for it
        if area is not None:
            area.clear()
        print(f"\n[stopped: this answer is dropped; the conversation before it ({len(s.conv.turns)} turn(s)) is kept]",
              file=out)
        return None
    if area is not None:
        area.clear()
    text = done.result[0][0]
    print(f"assistant> {printable(text)}", file=out)
    rate = s.gen_length / max(done.elapsed, 1e-9)
    print(f"[{done.steps} steps · {done.nfe} NFE · {done.elapsed:.2f}s · {rate:.0f} tokens/s]", file=out)
    s.conv.turns = [*s.conv.turns[dropped:], (user, text)]  # the trim applies once the answer is complete
    return text


def banner(s: ChatSession, name: str) -> str:
    fmt = ("the tokenizer's chat template" if has_chat_template(s.tokenizer) else
           "no chat template in this tokenizer: the plain <|user|>/<|assistant|> turns of mdlm's SFT data")
    return (f"mdlm chat — {name}\nformat: {fmt}\nanswers of {s.gen_length} tokens in ≤ {s.config.steps} steps, "
            f"context {s.context} tokens\n{HELP}")


def chat_loop(s: ChatSession, name: str, read: Callable[[str], str] = input, out: TextIO = sys.stdout,
              live: bool | None = None, color: bool = True) -> None:
    """Read a message, answer it, repeat until /quit or end of input. ``live`` (default: ``out`` is a
    terminal) redraws the canvas in place at every step."""
    live = out.isatty() if live is None else live
    print(banner(s, name), file=out, flush=True)
    while True:
        try:
            user = read("you> ").strip()
        except EOFError:
            print(file=out)
            return
        except KeyboardInterrupt:
            print(f"\n({HELP})", file=out)
            continue
        if user in ("/quit", "/exit"):
            return
        if user == "/reset":
            s.conv.turns.clear()
            print("[history cleared]", file=out)
            continue
        if user:
            try:
                answer(s, user, out, live, color)
            except ValueError as e:  # too long for the context (ContextError), or settings the sampler refuses
                print(f"error: {e}", file=out)
            out.flush()
