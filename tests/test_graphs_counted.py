"""The counter bookkeeping of a captured sampler step (mdlm.sampling.graphs.capture_counted), without a GPU: the
capture itself is replaced by one that records the body's outputs but, like a CUDA-graph capture, must not leave its
host-side counter changes behind; each replay then counts one step."""

import mdlm.sampling.graphs as graphs


class FakeGraph:
    def __init__(self, body):
        self.out, self.body, self.replays = body(), body, 0

    def replay(self):
        self.replays += 1  # a real replay re-runs the kernels only, never the body's Python


def test_capture_rolls_the_counters_back_and_every_replay_adds_one_steps_worth(monkeypatch):
    counters = [10, 100, 3]  # e.g. NFE, positions, verify rows

    def body():
        counters[0] += 1
        counters[1] += 32
        return "out"

    def read():
        return list(counters)

    def write(v):
        counters[:] = v

    monkeypatch.setattr(graphs, "capture", FakeGraph)
    g = graphs.capture_counted(body, read, write)
    assert counters == [10, 100, 3] and g.out == "out"
    g.replay()
    g.replay()
    assert counters == [12, 164, 3] and g.graph.replays == 2


def test_a_failed_capture_leaves_the_counters_as_they_were(monkeypatch):
    counters = [5, 7]

    def body():
        counters[0] += 1

    def failing(b):
        b()  # the body ran partway before the capture failed
        return None

    monkeypatch.setattr(graphs, "capture", failing)
    assert graphs.capture_counted(body, lambda: list(counters), lambda v: counters.__setitem__(slice(None), v)) is None
    assert counters == [5, 7]
