"""A pod stand-in for the proxy tests (tests/unit/test_proxy_forwarding.py,
tests/integration/test_proxy.py): an asyncio TCP server on a loopback IP that answers every
connection with its name and counts the connections. Importable from every test directory, like
tests/streaming_double.py."""

from __future__ import annotations

import asyncio


class Backend:
    """An endpoint answering its name (and a newline with ``newline``); with ``echo`` it first
    reads to EOF and echoes the bytes back."""

    def __init__(self, name: str, ip: str, *, echo: bool = False, newline: bool = True) -> None:
        self.name, self.ip, self.echo, self.newline = name, ip, echo, newline
        self.port = 0
        self.server: asyncio.Server | None = None
        self.hits = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.hits += 1
        if self.echo:
            data = await reader.read()  # until the client's half-close
            writer.write(b"echo:" + data)
        else:
            writer.write(self.name.encode() + (b"\n" if self.newline else b""))
        await writer.drain()
        writer.close()

    async def start(self) -> Backend:
        """Listen on a free port of ``ip``; returns self, with ``port`` set."""
        self.server = await asyncio.start_server(self._handle, self.ip, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
