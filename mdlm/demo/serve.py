"""Serve the web demo from this process on a free 127.0.0.1 port (tests, the screenshot script)."""

from __future__ import annotations

import socket

from .limits import Limits
from .models import DemoModels


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve_in_background(models: DemoModels, limits: Limits | None = None, slow_motion: float = 0.0,
                        host: str = "127.0.0.1"):
    """Start the demo without blocking; returns (app, url). ``app.close()`` stops it."""
    from .web import build_app

    app = build_app(models, limits or Limits(), slow_motion=slow_motion)
    port = free_port(host)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True)
    return app, f"http://{host}:{port}/"
