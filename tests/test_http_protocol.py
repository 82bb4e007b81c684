"""The web processes' HTTP protocol turns Nagle's algorithm off on every connection, which
uvicorn's multi-worker mode left on (its listening socket says protocol 0, and asyncio sets
TCP_NODELAY only on sockets that say TCP)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvicorn
from uvicorn.server import ServerState

ROOT = Path(__file__).resolve().parent.parent


class Transport(asyncio.Transport):
    def __init__(self, sock: socket.socket):
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name, default=None):
        return {
            "socket": self.sock,
            "peername": self.sock.getpeername(),
            "sockname": self.sock.getsockname(),
        }.get(name, default)


def accepted_as_uvicorn_binds() -> tuple[socket.socket, socket.socket, socket.socket]:
    listener = socket.socket(family=socket.AF_INET)  # as uvicorn's Config.bind_socket
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server_side, _ = listener.accept()
    return listener, client, server_side


def test_a_connection_gets_tcp_nodelay():
    listener, client, server_side = accepted_as_uvicorn_binds()
    config = uvicorn.Config(app="city.asgi:application", http="city.http:NoDelayHTTPProtocol")
    config.load()
    loop = asyncio.new_event_loop()
    try:
        before = server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        protocol = config.http_protocol_class(
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
        protocol.connection_made(Transport(server_side))

        assert before == 0  # what uvicorn's workers got
        assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        loop.close()
        for sock in (client, server_side, listener):
            sock.close()


def test_the_procfiles_web_line_serves_with_it():
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )

    assert "--http city.http:NoDelayHTTPProtocol" in web
