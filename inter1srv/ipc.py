"""Small typed control messages between processes: length-prefixed orjson over Unix sockets.

Media never travels here (it goes through shared memory); messages are a few
hundred bytes to a few tens of KiB (a window's results).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import orjson

_HEADER = struct.Struct("!I")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ChannelClosed(Exception):
    pass


def pack(message: dict) -> bytes:
    body = orjson.dumps(message, option=orjson.OPT_SERIALIZE_NUMPY)
    return _HEADER.pack(len(body)) + body


class AsyncChannel:
    """One asyncio stream connection carrying messages both ways."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, path: str) -> AsyncChannel:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_MESSAGE_BYTES)
        return cls(reader, writer)

    def send(self, message: dict) -> None:
        """Queue a message; writes are ordered. Call :meth:`drain` to apply backpressure."""
        if self.writer.is_closing():
            raise ChannelClosed("channel closed")
        self.writer.write(pack(message))

    async def drain(self) -> None:
        await self.writer.drain()

    async def recv(self) -> dict:
        try:
            header = await self.reader.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            if size > MAX_MESSAGE_BYTES:
                raise ChannelClosed(f"message of {size} bytes is over the limit")
            return orjson.loads(await self.reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ChannelClosed(str(exc)) from exc

    def close(self) -> None:
        self.writer.close()


class BlockingChannel:
    """The same framing over a blocking socket (worker processes); send is thread-safe."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._send_lock = threading.Lock()
        self._file = sock.makefile("rb")

    @classmethod
    def connect(cls, path: str, timeout: float = 10.0) -> BlockingChannel:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(None)
        return cls(sock)

    def send(self, message: dict) -> None:
        data = pack(message)
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc

    def recv(self) -> dict:
        header = self._file.read(_HEADER.size)
        if len(header) < _HEADER.size:
            raise ChannelClosed("peer closed")
        (size,) = _HEADER.unpack(header)
        body = self._file.read(size)
        if len(body) < size:
            raise ChannelClosed("peer closed mid-message")
        return orjson.loads(body)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
