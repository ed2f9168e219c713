"""A listener that answers PostgreSQL's start-up as a server that will not take connections.

A real PostgreSQL answers a connection's StartupMessage with an ErrorResponse and closes
it while it is starting up (57P03), shutting down (57P01), or out of connection slots
(53300). Catching a real server in the first two states is a race; this listener plays
exactly those bytes, so the real asyncpg and SQLAlchemy stacks meet each refusal on every
try. It refuses TLS (``N``), as a server without it does.
"""

from __future__ import annotations

import asyncio
import struct


def _error_response(sqlstate: str, message: str) -> bytes:
    fields = b""
    for tag, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message)):
        fields += tag + value.encode() + b"\x00"
    fields += b"\x00"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


_SSL_REQUEST = 80877103


class RefusingPostgres:
    """``async with RefusingPostgres("57P03", "...") as port``: refuses every connection."""

    def __init__(self, sqlstate: str, message: str) -> None:
        self._reply = _error_response(sqlstate, message)
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!I", await reader.readexactly(4))
                body = await reader.readexactly(length - 4)
                if struct.unpack("!I", body[:4])[0] == _SSL_REQUEST:
                    writer.write(b"N")
                    await writer.drain()
                    continue
                writer.write(self._reply)  # the StartupMessage: refuse it
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
