"""The terminal chat as a person uses it: ``recipes/chat.py`` on a pseudo-terminal with a tiny random checkpoint —
type a message, watch the canvas redrawn in place, read the answer line, press Ctrl-C mid-answer, go on.
Plus the conversation rules (chat template or the plain SFT turns, trimming to the context) in-process."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest
from demo_fixtures import tiny_text_checkpoint

from mdlm.data.sft import format_prompt
from mdlm.demo.conversation import (
    ContextError,
    Conversation,
    fit_prompt,
    n_tokens,
    render,
)
from mdlm.pipelines import load_for_generation

ROOT = Path(__file__).resolve().parents[1]
ANSWER = re.compile(r"assistant> [^\r\n]*\r?\n\[(\d+) steps · (\d+) NFE")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_text_checkpoint(tmp_path_factory.mktemp("chat") / "text")


class Terminal:
    """A child process on a pseudo-terminal: what it prints is read back, keys are typed into it."""

    def __init__(self, argv: list[str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: the pty is its controlling terminal, so ^C there is SIGINT here
            os.environ.update(PYTHONPATH=str(ROOT), COLUMNS="100", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
            os.execv(sys.executable, [sys.executable, *argv])
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """Read until ``pattern`` (a regex) appears in what was printed after the last match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.seen)
            if m:
                before, self.seen = self.seen[: m.end()], self.seen[m.end():]
                self.last = before
                return m
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {pattern!r}; printed: {self.seen[-2000:]!r}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.seen += os.read(self.fd, 65536).decode("utf-8", "replace")
                except OSError:  # the child closed the terminal
                    raise AssertionError(f"the chat exited; printed: {self.seen[-2000:]!r}") from None

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def close(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


@pytest.mark.slow  # a second Python process (torch + transformers import) on a terminal: ~10 s
def test_chat_on_a_terminal_redraws_the_canvas_trims_history_and_survives_ctrl_c(checkpoint):
    # --frame-delay: each answer takes ≥ 32 × 0.1 s on screen, so the Ctrl-C typed after its first frame lands
    # mid-answer (without it a fast machine could finish the answer first: the test raced)
    term = Terminal([str(ROOT / "recipes" / "chat.py"), "--model", str(checkpoint), "--gen-length", "32",
                     "--steps", "32", "--temperature", "0.8", "--frame-delay", "0.1"])
    try:
        term.expect(r"plain <\|user\|>/<\|assistant\|> turns")  # this tokenizer has no chat template: said so
        term.expect("you> ")
        term.type("hi\n")
        m = term.expect(ANSWER.pattern)
        assert (int(m[1]), int(m[2])) == (32, 32)
        drawn = term.last
        assert drawn.count("\x1b[J") >= 31  # the canvas was erased and redrawn in place at each step
        assert "\x1b[2m░" in drawn and "\x1b[1;32m" in drawn  # dim masks, green new tokens
        assert "step 1/32" in drawn and "step 32/32" in drawn and "0/32 masked" in drawn
        term.expect("you> ")
        term.type("ho\n")  # 2 turns no longer fit in the 64-token context with a 32-token answer
        term.expect(r"\[history trimmed: dropped the 1 oldest turn\(s\) to fit the context of 64 tokens\]")
        term.expect(ANSWER.pattern)
        term.expect("you> ")
        term.type("to be\n")
        term.expect(r"\[history trimmed: dropped the 1 oldest turn")
        term.expect(r"step \d+/32")  # the first frame is on screen: the answer is being drawn
        term.type("\x03")  # Ctrl-C
        term.expect(r"\[stopped: this answer is dropped; the conversation before it \(1 turn\(s\)\) is kept\]")
        assert "assistant> " not in term.last
        term.expect("you> ")
        term.type("the\n")  # the turn before the stopped one was kept: trimmed again
        term.expect(r"\[history trimmed: dropped the 1 oldest turn")
        term.expect(ANSWER.pattern)
        term.expect("you> ")
        term.type("/quit\n")
        assert term.close() == 0
    finally:
        try:
            os.kill(term.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def tok(checkpoint):
    return load_for_generation(str(checkpoint)).tokenizer


def test_one_turn_prompt_is_what_sft_trains_on(tok):
    assert render(tok, [{"role": "user", "content": "Define dog."}]) == format_prompt(tok, "Define dog.")


def test_conversation_uses_the_chat_template_when_the_tokenizer_has_one(tok):
    tok.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}[assistant]"
    try:
        conv = Conversation(system="be brief", turns=[("hi", "hello")])
        prompt, dropped = fit_prompt(tok, conv, "who?", gen_length=4, context=None)
        assert prompt == "[system] be brief [user] hi [assistant] hello [user] who? [assistant]" and dropped == 0
    finally:
        tok.chat_template = None


def test_history_is_trimmed_oldest_first_and_a_too_long_message_is_refused(tok):
    conv = Conversation(turns=[("one", "1"), ("two", "2"), ("three", "3")])
    full = n_tokens(tok, render(tok, conv.messages("four")))
    prompt, dropped = fit_prompt(tok, conv, "four", gen_length=8, context=full + 8)
    assert dropped == 0 and "one" in prompt
    prompt, dropped = fit_prompt(tok, conv, "four", gen_length=8, context=full + 7)
    assert dropped == 1 and "one" not in prompt and "two" in prompt and "four" in prompt
    assert n_tokens(tok, prompt) + 8 <= full + 7
    with pytest.raises(ContextError, match="more than the model's context of 10"):
        fit_prompt(tok, conv, "four", gen_length=8, context=10)
