# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A backend for e2e tests, stdlib only (it runs with any python3, e.g. in the agent image).

``GET`` (any path, any method) answers the request's method, path and header lines as JSON; a
WebSocket upgrade (RFC 6455) echoes every text message back. Usage: ``python3 echo_server.py [port]``.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import socket
import struct
import sys

_WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_frame(conn: socket.socket) -> tuple[int, bytes] | None:
    """(opcode, payload) of one frame, unmasked; None when the peer closed the connection."""
    head = _read_exactly(conn, 2)
    if head is None:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", _read_exactly(conn, 2) or b"\0\0")[0]
    elif length == 127:
        length = struct.unpack("!Q", _read_exactly(conn, 8) or b"\0" * 8)[0]
    mask = _read_exactly(conn, 4) if head[1] & 0x80 else b"\0\0\0\0"
    payload = _read_exactly(conn, length) if length else b""
    if mask is None or payload is None:
        return None
    return opcode, bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def frame(opcode: int, payload: bytes, mask: bytes = b"") -> bytes:
    """One final frame; clients must mask (pass 4 bytes), servers must not."""
    length = len(payload)
    head = bytes([0x80 | opcode])
    flag = 0x80 if mask else 0
    if length < 126:
        head += bytes([flag | length])
    elif length < 65536:
        head += bytes([flag | 126]) + struct.pack("!H", length)
    else:
        head += bytes([flag | 127]) + struct.pack("!Q", length)
    if mask:
        payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return head + mask + payload


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _WEBSOCKET_GUID).digest()).decode()


def _read_exactly(conn: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": [[name.lower(), value] for name, value in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

    def _websocket(self) -> None:
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(self.headers["Sec-WebSocket-Key"]))
        self.end_headers()
        self.wfile.flush()
        while True:
            got = read_frame(self.connection)
            if got is None or got[0] == 0x8:
                break
            if got[0] == 0x9:
                self.connection.sendall(frame(0xA, got[1]))
            elif got[0] in (0x1, 0x2):
                self.connection.sendall(frame(got[0], got[1]))
        self.close_connection = True

    def log_message(self, *_args) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 80
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
