"""A free TCP port for the tests that start a (one-process) torch.distributed / DeepSpeed job, so that two test
suites on one machine do not collide on a fixed MASTER_PORT."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the OS reports free on 127.0.0.1 right now (bind to port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
