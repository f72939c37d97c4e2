"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import logging
import socket

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


def is_port_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on `host:port` and we could bind it right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ephemeral_port(host: str = HOST, avoid: set[int] | frozenset[int] = frozenset()) -> int:
    """A port the kernel says is free now (not one of `avoid`)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def choose_port(
    name: str,
    preferred: int | None,
    host: str = HOST,
    avoid: set[int] | frozenset[int] = frozenset(),
) -> int:
    """`preferred` when it is free, else another free port, logging which one was chosen.

    `preferred=None` (or 0) asks for any free port without a message.
    """
    if preferred and preferred not in avoid and is_port_free(preferred, host):
        return preferred
    port = ephemeral_port(host, avoid)
    if preferred:
        log.warning(
            "%s: port %d on %s is taken; using port %d instead", name, preferred, host, port
        )
    return port
