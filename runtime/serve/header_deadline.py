"""uvicorn's HTTP protocol with a deadline on the request line and headers.

uvicorn closes a keep-alive connection idle between requests (`timeout_keep_alive`), but a
connection that opens and sends nothing, or sends half a request line and stops, is held for
ever: 2048 such sockets (`--max-connections`) and every other client gets 503. Here a
connection has `seconds` from when it opens, or from the first byte of each request, until its
headers are complete; then it is closed. The body has its own deadline in the app
(`--body-timeout`, answered 408), where the response can still be sent.

Subclasses uvicorn's httptools protocol (httptools is a dependency of the runtime); its three
hooks used here (`connection_made`, `on_message_begin`, `on_headers_complete`) are the parser's
and the transport's callbacks, stable across uvicorn releases.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def header_deadline_protocol(seconds: float) -> type[HttpToolsProtocol]:
    """An httptools protocol class closing connections whose headers take longer than `seconds`."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_header_deadline()

        def on_headers_complete(self) -> None:
            self._disarm_header_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
