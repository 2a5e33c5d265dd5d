"""A loopback TCP proxy that tests control, to cut and restore connections to a server.

    with TcpProxy("127.0.0.1", 5672) as proxy:
        client connects to proxy.port
        proxy.cut()       # close every connection, refuse new ones (connection reset)
        proxy.blackhole() # accept and hold connections but forward nothing (a hung server)
        proxy.restore()   # forward again; existing cut connections stay closed
        proxy.mute_replies = True  # forward to the server, drop what it answers

The proxy listens on a free port of 127.0.0.1 and forwards each accepted connection to
``(host, port)`` with two pump threads. ``connections`` counts connections forwarded.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` until cut."""

    FORWARD, CUT, BLACKHOLE = "forward", "cut", "blackhole"

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = self.FORWARD
        self.connections = 0
        #: drop what the server sends while the client's bytes still reach it (lost replies)
        self.mute_replies = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, where clients connect."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        """Close every open connection (both sides) and refuse new ones until ``restore``."""
        with self._lock:
            self.mode = self.CUT
            self._close_all()

    def blackhole(self) -> None:
        """Close open connections; accept new ones but never forward a byte."""
        with self._lock:
            self.mode = self.BLACKHOLE
            self._close_all()

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            if self.mode == self.BLACKHOLE:
                self._close_all()
            self.mode = self.FORWARD

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self._listener.close()
        with self._lock:
            self._close_all()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------
    def _close_all(self) -> None:
        for sock in list(self._sockets):
            _hard_close(sock)
        self._sockets.clear()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                mode = self.mode
                if mode == self.CUT:
                    _hard_close(client)
                    continue
                if mode == self.BLACKHOLE:
                    self._sockets.add(client)
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _hard_close(client)
                continue
            with self._lock:
                if self.mode != self.FORWARD:
                    _hard_close(client)
                    _hard_close(upstream)
                    continue
                self._sockets.update((client, upstream))
                for sock in (client, upstream):  # forward small frames at once (no Nagle delay)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        pair = {client: upstream, upstream: client}
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select(list(pair), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is upstream and self.mute_replies:
                        continue
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                for sock in (client, upstream):
                    self._sockets.discard(sock)
                    _hard_close(sock)


def _hard_close(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a dropped link looks to the peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
