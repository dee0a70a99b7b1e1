"""A TCP forwarder the tests put in front of PostgreSQL to cut or stall the link at will.

It runs its own event loop in a thread, so it keeps working whatever the test's loop is doing.
Modes, switched at run time from any thread (each call returns once the switch is done):

- `restore()`: forward bytes both ways (the initial mode);
- `cut()`: abort every open connection and close each new one as soon as it is accepted,
  like a server that went away;
- `stall()`: keep connections open and accept new ones, but forward nothing either way, like a
  hung network or server; what was held back flows again after `restore()`.
"""

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

Mode = Literal["forward", "cut", "stall"]
CHUNK = 65536


@dataclass(eq=False)
class _Link:
    """One client connection and, once opened, its upstream connection."""

    client: asyncio.StreamWriter
    task: "asyncio.Task[Any] | None"
    upstream: asyncio.StreamWriter | None = None

    def abort(self) -> None:
        self.client.transport.abort()
        if self.upstream is not None:
            self.upstream.transport.abort()


class TcpProxy:
    """Listens on a free loopback port and forwards to `target_host:target_port`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.mode: Mode = "forward"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing: asyncio.Event | None = None

    def __enter__(self) -> "TcpProxy":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())

    def cut(self) -> None:
        self._call(self._switch("cut"))

    def stall(self) -> None:
        self._call(self._switch("stall"))

    def restore(self) -> None:
        self._call(self._switch("forward"))

    def close(self) -> None:
        """Abort every connection, stop listening and stop the thread."""
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _switch(self, mode: Mode) -> None:
        assert self._flowing is not None
        self.mode = mode
        if mode == "forward":
            self._flowing.set()
            return
        self._flowing.clear()
        if mode == "cut":
            self._abort_all()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self.mode = "cut"
        self._server.close()
        self._abort_all()
        tasks = [link.task for link in self._links if link.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _abort_all(self) -> None:
        for link in list(self._links):
            link.abort()
            if link.task is not None:
                link.task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        if self.mode == "cut":
            writer.transport.abort()
            return
        link = _Link(writer, asyncio.current_task())
        self._links.add(link)
        try:
            # Stalled: the connection is accepted, but nothing reaches the server yet.
            await self._flowing.wait()
            up_reader, link.upstream = await asyncio.open_connection(
                self.target_host, self.target_port
            )
            await self._pump_both(reader, writer, up_reader, link.upstream)
        except (OSError, asyncio.CancelledError):
            pass  # cut, reset by a peer, or shut down: the link simply ends
        finally:
            link.abort()
            self._links.discard(link)

    async def _pump_both(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        # One direction may end (EOF) while the other goes on; an error in either ends both.
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        while data := await reader.read(CHUNK):
            await self._flowing.wait()
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()
