"""The web demo as a person's browser drives it: the Gradio app on a free 127.0.0.1 port with tiny random
checkpoints, called through ``gradio_client`` (the same HTTP API the page uses). Checks the streamed steps
(one update per sampler step, masks decreasing, final text = the sampler's own output for the same seed),
the image tab, and that requests past the limits get a clear error and leave the server working."""

from __future__ import annotations

import socket
import time

import pytest

NO_DEMO = 'the web demo\'s extra is not installed: pip install -e ".[demo]"'
gr = pytest.importorskip("gradio", reason=NO_DEMO)
gradio_client = pytest.importorskip("gradio_client", reason=NO_DEMO)

from demo_fixtures import tiny_image_checkpoint, tiny_text_checkpoint  # noqa: E402

from mdlm.demo.limits import Limits  # noqa: E402
from mdlm.demo.models import load_demo_models  # noqa: E402
from mdlm.demo.stream import STRATEGIES  # noqa: E402
from mdlm.demo.web import build_app  # noqa: E402
from mdlm.pipelines import generate_text  # noqa: E402
from mdlm.pipelines.text import sampler_config_from  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"),  # gradio's own pandas use warns under pandas 3:
              pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")]
LIMITS = Limits(max_gen_length=24, max_steps=24, max_images=4, max_image_steps=8)
# prompt, chat, answer length, steps, block length, schedule, strategy, threshold, cache, temperature, seed, delay
TEXT_ARGS = ["to be or", False, 16, 8, 8, "even", STRATEGIES[0], 0, "none", 0.7, 3, 0]  # the confidence rule


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo_web")
    models = load_demo_models([str(tiny_text_checkpoint(base / "text")), str(tiny_image_checkpoint(base / "image"))])
    app = build_app(models, LIMITS)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
    yield models, client
    client.close()
    app.close()


def _stream(client, api_name: str, args: list) -> list:
    job = client.submit(*args, api_name=api_name)
    job.result(timeout=60)
    return job.outputs()


def _masked(highlighted) -> int:
    return sum(1 for seg in highlighted if seg["class_or_confidence"] == "masked")


def test_text_tab_streams_every_step_and_ends_with_the_samplers_text(served):
    models, client = served
    outs = _stream(client, "/generate_text", TEXT_ARGS)
    steps = [o for o in outs if not o[2]]  # per-step updates; the last one carries the final text
    assert len(steps) == 8 and len(outs) == 9
    masked = [_masked(o[0]["value"] if isinstance(o[0], dict) else o[0]) for o in steps]
    assert masked == sorted(masked, reverse=True) and masked[-1] == 0 and masked[0] == 14  # even split: 2 per step
    assert "step **1/8**" in steps[0][1] and "NFE 1" in steps[0][1] and "tokens/s" in steps[0][1]
    config, _ = sampler_config_from(models.text.defaults, {"steps": 8, "block_length": 8, "temperature": 0.7,
                                                           "schedule": "even", "remasking": "low_confidence"})
    texts, _ = generate_text(models.text.model, models.text.tokenizer, ["to be or"], config, 16, seed=3)
    assert outs[-1][2] == texts[0] and texts[0]
    assert "done" in outs[-1][1]


def test_image_tab_shows_the_grid_emerging_then_the_final_grid(served):
    _, client = served
    outs = _stream(client, "/generate_images", ["one", 4, 4, 0.0, 0, 0])
    assert len(outs) == 5
    assert all(o[2] is None for o in outs[:-1]) and outs[-1][2] is not None  # final grid only at the end
    statuses = [o[1] for o in outs[:-1]]
    assert [s.split("/")[0].split()[-1] for s in statuses] == ["**1", "**2", "**3", "**4"]
    assert "0/64 masked" in outs[-1][1]


BAD_REQUESTS = [  # (api, args, what the message says); sliders and dropdowns are checked by Gradio, the rest by us
    ("/generate_text", [*TEXT_ARGS[:2], 10_000, *TEXT_ARGS[3:]], "greater than maximum value 24"),
    ("/generate_text", [*TEXT_ARGS[:3], 0, *TEXT_ARGS[4:]], "less than minimum value 1"),
    ("/generate_text", [*TEXT_ARGS[:4], 100, *TEXT_ARGS[5:]], "block length must be between 0 and 16"),
    ("/generate_text", ["x" * 5000, *TEXT_ARGS[1:]], "the limit is 4000"),
    ("/generate_text", [*TEXT_ARGS[:4], 0, *TEXT_ARGS[5:8], "dual", *TEXT_ARGS[9:]], "block_length"),
    ("/generate_images", ["one", 100, 4, 0.0, 0, 0], "greater than maximum value 4"),
    ("/generate_images", ["no-such-class", 1, 4, 0.0, 0, 0], "not in the list of choices"),
]


def test_requests_past_the_limits_get_a_message_and_the_server_keeps_working(served):
    _, client = served
    for api, args, message in BAD_REQUESTS:
        with pytest.raises(gradio_client.exceptions.AppError) as err:
            client.predict(*args, api_name=api)
        assert message in str(err.value), (api, str(err.value))
    outs = _stream(client, "/generate_images", ["zero", 1, 2, 0.0, 0, 0])  # still serving
    assert outs[-1][2] is not None


def test_one_generation_at_a_time_the_next_waits_in_the_queue(served, monkeypatch):
    from mdlm.demo import web

    _, client = served
    runs, real = [], web.text_updates

    def logged(*args):  # the server's handler, timed
        start = time.perf_counter()
        yield from real(*args)
        runs.append((start, time.perf_counter()))

    monkeypatch.setattr(web, "text_updates", logged)
    slow = [*TEXT_ARGS[:-1], 0.1]  # 8 steps × 0.1 s slow motion
    first, second = (client.submit(*slow, api_name="/generate_text") for _ in range(2))
    assert first.result(timeout=60)[2] == second.result(timeout=60)[2]  # same seed, same text
    (_, end_first), (start_second, _) = sorted(runs)
    assert end_first <= start_second  # the second request started only after the first had finished
