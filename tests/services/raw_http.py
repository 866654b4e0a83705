"""HTTP/1.1 requests written byte for byte on a socket: any method, target, header value
(non-ASCII, undecodable) or body, which urllib and http.client refuse to send."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass(frozen=True)
class RawRequest:
    """One request as it goes on the wire (``Host`` and ``Connection: close`` added)."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes | None = None
    chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length

    def head(self, port: int) -> bytes:
        """The request line and headers."""
        lines = [self.method + b" " + self.target + b" HTTP/1.1", b"Host: 127.0.0.1:%d" % port]
        lines += [name + b": " + value for name, value in self.headers]
        if self.body is not None:
            framing = b"Transfer-Encoding: chunked" if self.chunked else b"Content-Length: %d"
            lines.append(framing if self.chunked else framing % len(self.body))
        lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def framed_body(self) -> bytes:
        """The body as sent: as is, or in chunks with the closing empty chunk."""
        if self.body is None:
            return b""
        if not self.chunked:
            return self.body
        pieces = [self.body[i : i + CHUNK] for i in range(0, len(self.body), CHUNK)]
        return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def send(port: int, request: RawRequest, timeout_s: float = 60.0) -> tuple[int, bytes]:
    """Send ``request`` to 127.0.0.1:``port``: (status, body); (0, what came) when no
    status line came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        _send_until_answered(sock, request.head(port) + request.framed_body())
        answer = _read_all(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    parts = status_line.split(b" ")
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return 0, answer
    return int(parts[1]), rest.partition(b"\r\n\r\n")[2]


def _send_until_answered(sock: socket.socket, data: bytes) -> None:
    # A server may answer (413) before it reads a large body: stop sending then, as a
    # browser does, instead of writing into a connection it is closing.
    for start in range(0, len(data), CHUNK):
        if select.select([sock], [], [], 0)[0]:
            return
        try:
            sock.sendall(data[start : start + CHUNK])
        except (BrokenPipeError, ConnectionResetError):
            return


def _read_all(sock: socket.socket) -> bytes:
    received = bytearray()
    try:
        while chunk := sock.recv(CHUNK):
            received += chunk
    except ConnectionResetError:
        pass  # what arrived before the reset is the answer
    return bytes(received)
