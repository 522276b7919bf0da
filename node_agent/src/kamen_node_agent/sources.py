"""Where events come from: a Unix stream socket, or a file, FIFO or stdin.
Each line is one JSON event (events.py); a bad line is logged and skipped."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver
import stat
import sys
import threading
from datetime import datetime
from pathlib import Path

from ._compat import UTC
from .buffer import Buffer, Event
from .events import BadEvent, parse_line

logger = logging.getLogger("kamen_node_agent")

FLUSH_LINES = 500


def _parse(lines: list[bytes]) -> list[Event]:
    now = datetime.now(UTC)
    events = []
    for line in lines:
        try:
            event = parse_line(line, now=now)
        except BadEvent as exc:
            logger.warning("skipping a bad event line (%s): %.200r", exc, line)
            continue
        if event is not None:
            events.append(event)
    return events


class SocketSource:
    """A Unix stream socket: producers connect and write JSON lines. Lines are
    stored as they arrive (at most FLUSH_LINES per transaction); when a
    producer sends ``sync``, the agent answers ``ok`` once everything before
    it is on disk."""

    def __init__(self, path: str, buffer: Buffer, on_event):
        self.path = path
        self.buffer = buffer
        self.on_event = on_event
        source = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                pending: list[bytes] = []
                for line in self.rfile:
                    if line.strip() == b"sync":
                        source._store(pending)
                        pending = []
                        self.wfile.write(b"ok\n")
                        continue
                    pending.append(line)
                    if len(pending) >= FLUSH_LINES:
                        source._store(pending)
                        pending = []
                source._store(pending)

        if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from a previous run
        self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _store(self, lines: list[bytes]) -> None:
        events = _parse(lines)
        if events:
            self.buffer.add(events, now=datetime.now(UTC))
            self.on_event()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class FileSource:
    """A file, FIFO or ``-`` (stdin).

    A regular file is followed like ``tail -F``: its position (device, inode,
    offset) is stored with the events in the same transaction, so after a
    restart reading resumes exactly after the last stored line; a rotated or
    truncated file is read from its start. A FIFO or stdin is read until EOF
    (a FIFO is then reopened for the next writer)."""

    def __init__(self, path: str, buffer: Buffer, on_event, stop: threading.Event):
        self.path = path
        self.buffer = buffer
        self.on_event = on_event
        self.stop_event = stop
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.state_key = f"file:{Path(path).resolve()}" if path != "-" else None

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        pass  # the shared stop event ends the loop

    def _store(self, lines: list[bytes], position: str | None = None) -> None:
        events = _parse(lines)
        if events or position is not None:
            self.buffer.add_with_state(
                events,
                key=self.state_key if position else None,
                value=position,
                now=datetime.now(UTC),
            )
        if events:
            self.on_event()

    def _run(self) -> None:
        try:
            if self.path == "-":
                self._read_stream(sys.stdin.buffer)
            elif stat.S_ISFIFO(os.stat(self.path).st_mode):
                while not self.stop_event.is_set():
                    with open(self.path, "rb") as fifo:
                        self._read_stream(fifo)
            else:
                self._follow()
        except Exception:
            logger.exception("reading %s failed", self.path)

    def _read_stream(self, stream) -> None:
        pending: list[bytes] = []
        for line in stream:
            pending.append(line)
            if len(pending) >= FLUSH_LINES:
                self._store(pending)
                pending = []
            if self.stop_event.is_set():
                break
        self._store(pending)

    def _follow(self) -> None:
        saved = self.buffer.get_state(self.state_key)
        dev = ino = offset = None
        if saved:
            dev, ino, offset = (int(x) for x in saved.split(":"))
        handle = None
        while not self.stop_event.is_set():
            if handle is None:
                try:
                    handle = open(self.path, "rb")  # noqa: SIM115 - closed on rotation
                except FileNotFoundError:
                    self.stop_event.wait(0.5)
                    continue
                st = os.fstat(handle.fileno())
                if (st.st_dev, st.st_ino) == (dev, ino) and offset is not None:
                    handle.seek(min(offset, st.st_size))
                dev, ino = st.st_dev, st.st_ino
            pending, position = [], handle.tell()
            while len(pending) < FLUSH_LINES:
                line = handle.readline()
                if not line.endswith(b"\n"):
                    handle.seek(position)  # a partial line: wait for its end
                    break
                pending.append(line)
                position = handle.tell()
            if pending:
                self._store(pending, f"{dev}:{ino}:{position}")
                continue
            try:
                st = os.stat(self.path)
                rotated = (st.st_dev, st.st_ino) != (dev, ino) or st.st_size < position
            except FileNotFoundError:
                rotated = False
            if rotated:
                handle.close()
                handle, offset = None, None
                dev = ino = None
                continue
            self.stop_event.wait(0.2)
        if handle is not None:
            handle.close()


def send_lines(path: str, lines: list[str], *, timeout: float = 30.0) -> None:
    """For producers (and tests): write lines to the agent's socket and wait
    until they are on disk."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        payload = "".join(line.rstrip("\n") + "\n" for line in lines) + "sync\n"
        sock.sendall(payload.encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(16)
            if not chunk:
                raise ConnectionError("the agent closed the socket before confirming")
            reply += chunk
        if reply.strip() != b"ok":
            raise ConnectionError(f"unexpected reply {reply!r}")
