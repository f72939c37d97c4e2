"""A Slack-compatible incoming webhook on loopback that keeps what it receives.

The pipeline's notifier posts JSON to a webhook URL; locally (`make demo`, the end-to-end
tests) this sink stands in for the chat service, so the notifications can be shown or asserted.

    sink = WebhookSink("/services/demo").start()
    ...  # give sink.url to the pipeline
    sink.received  # the JSON bodies, in arrival order
    sink.stop()
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from devstack.ports import HOST


class WebhookSink:
    """An HTTP server on a free 127.0.0.1 port that records every JSON body POSTed to it."""

    def __init__(self, path: str = "/services/local") -> None:
        self.path = path
        self.received: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the webhook sink is not started: call start() first")
        return f"http://{HOST}:{self._server.server_address[1]}{self.path}"

    def start(self) -> WebhookSink:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with contextlib.suppress(ValueError):
                    received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        # A short poll interval: `stop()` waits for the serving loop to notice (default 0.5 s).
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
