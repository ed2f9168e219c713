"""A loopback TCP proxy a test can cut: the real server stays up, the path to it goes.

"Database down" and "Redis down" are tested this way against real servers: while the
proxy is stopped, connecting to its port is refused and open connections are reset,
exactly what a client sees when a server or the network between goes away.

``freeze()`` is the other fault: connections stay open and nothing moves (a server
stopped with SIGSTOP, a saturated disk, a black-holed network) until ``thaw()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.support.server import free_port


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a unix socket or (host, port); runs its own thread."""

    def __init__(self, target_unix: str | None = None, target: tuple[str, int] | None = None):
        self._unix = target_unix
        self._target = target
        self.port: int = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._loop.call_soon_threadsafe(self._flowing.set)

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def freeze(self) -> None:
        """Stop forwarding bytes; connections stay open and new ones are accepted."""
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def thaw(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def close(self) -> None:
        self.stop()
        self._call(self._drain())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _drain(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix:
                up_r, up_w = await asyncio.open_unix_connection(self._unix)
            else:
                assert self._target is not None
                up_r, up_w = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        if self._server is None:  # cut while we were connecting
            writer.transport.abort()
            up_w.transport.abort()
            return
        self._writers.update((writer, up_w))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    await self._flowing.wait()
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    w.transport.abort()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._writers.discard(writer)
        self._writers.discard(up_w)
