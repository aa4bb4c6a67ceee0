"""A stand-in for the Supervisor's ingress proxy, for tests in a network namespace.

Listens on 127.0.0.1, takes requests under ``/api/hassio_ingress/<token>``, strips
that prefix, adds ``X-Ingress-Path`` and forwards them from 172.30.32.2, as the
Supervisor does. One request per connection (``Connection: close``); responses,
event streams included, are piped back as they come.
"""

import asyncio
import contextlib

SUPERVISOR = "172.30.32.2"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class IngressProxy:
    def __init__(self, prefix: str, upstream: tuple[str, int]) -> None:
        self.prefix = prefix
        self.upstream = upstream
        self.outside: list[str] = []  # requests that were not under the prefix
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            if not target.startswith(self.prefix + "/"):
                self.outside.append(target)
                writer.write(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            kept = [
                line
                for line in lines[1:]
                if line and not line.lower().startswith(("connection:", "x-ingress-path:"))
            ]
            length = next(
                (
                    int(line.split(":", 1)[1])
                    for line in kept
                    if line.lower().startswith("content-length:")
                ),
                0,
            )
            body = await reader.readexactly(length) if length else b""
            request = [f"{method} {target[len(self.prefix) :]} {version}", *kept]
            request += [f"X-Ingress-Path: {self.prefix}", "Connection: close", "", ""]
            up_reader, up_writer = await asyncio.open_connection(
                *self.upstream, local_addr=(SUPERVISOR, 0)
            )
            up_writer.write("\r\n".join(request).encode("latin-1") + body)
            await up_writer.drain()
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
            up_writer.close()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()
