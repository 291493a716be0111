"""A minimal HTTP/1.1 client over asyncio streams, for requests no library would send.

Tests of hostile input need bytes aiohttp's client refuses to write: header
values that are not UTF-8, bodies sent a byte at a time, a Content-Length
that lies.  Keep-alive is used while the server allows it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class RawConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        content_length: bool = True,
    ) -> RawResponse:
        """Send one request (raw header bytes allowed) and read the whole answer."""
        head = [f"{method} {path} HTTP/1.1".encode(), f"Host: {self.host}".encode()]
        head += [name + b": " + value for name, value in headers or []]
        if content_length:
            head.append(f"Content-Length: {len(body)}".encode())
        data = b"\r\n".join(head) + b"\r\n\r\n" + body
        for attempt in (1, 2):
            reader, writer = await self._open()
            try:
                writer.write(data)
                await writer.drain()
                return await self._read(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                # The server closed a kept-alive connection between two requests.
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _read(self, reader: asyncio.StreamReader) -> RawResponse:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return RawResponse(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def client_gone_mid_body(port: int, token: str, path: str = "/webhook/alertmanager") -> None:
    """Send headers and part of a body, then close, while the handler reads the body.

    ``Expect: 100-continue``: aiohttp answers 100 once the request is dispatched to
    its handler, so the close is seen by a running handler (a close before that
    would drop the request before any handler ran)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        await writer.drain()
        async with asyncio.timeout(30):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
        writer.write(b'{"version": ')
        await writer.drain()
    finally:
        writer.close()
