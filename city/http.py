"""The HTTP protocol the web processes serve with: uvicorn's, with Nagle's algorithm off.

With ``--workers`` above one, uvicorn binds the listening socket itself (``socket.socket(family)``,
protocol 0), and asyncio turns TCP_NODELAY on only for sockets whose protocol says TCP: every
accepted connection then kept Nagle's algorithm, and a response written in two parts (head, then
body) waited for the client's delayed ACK — about 40 ms on each keep-alive request (a read of one
task over one connection: p50 5 ms with one worker, 52 ms with two; uvicorn#3149). The Procfile's
``web`` line names this class with ``--http``.
"""

from __future__ import annotations

import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


class NoDelayHTTPProtocol(AutoHTTPProtocol):
    def connection_made(self, transport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
