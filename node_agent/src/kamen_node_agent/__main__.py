"""Command line: ``kamen-node-agent`` (or ``python -m kamen_node_agent``).

    KAMEN_NODE_TOKEN=... kamen-node-agent --portal https://portal.example.com \\
        --buffer /var/lib/kamen-agent/buffer.sqlite3 --socket /run/kamen-agent.sock

The token comes from the environment (KAMEN_NODE_TOKEN) or --token-file, never
from the command line (other users can read it in the process list).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from . import __version__
from .buffer import Buffer
from .sender import MAX_BATCH, Backoff, Client, Sender
from .sources import FileSource, SocketSource

logger = logging.getLogger("kamen_node_agent")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="kamen-node-agent",
        description="Buffer session events on disk and deliver them to the Kamen portal "
        "as heartbeats, in event-time order.",
    )
    parser.add_argument(
        "--portal", required=True, help="portal base URL, e.g. https://portal.example.com"
    )
    parser.add_argument("--token-file", help="file holding the node token (else $KAMEN_NODE_TOKEN)")
    parser.add_argument("--buffer", default="kamen-agent.sqlite3", help="SQLite buffer file")
    parser.add_argument("--socket", help="Unix socket to accept JSON-line events on")
    parser.add_argument(
        "--input", action="append", default=[], help="file, FIFO or - (stdin) of JSON-line events"
    )
    parser.add_argument(
        "--batch-size", type=int, default=MAX_BATCH, help="heartbeats per request (1..1000)"
    )
    parser.add_argument(
        "--max-backoff", type=float, default=60.0, help="longest wait between retries (s)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout (s)")
    parser.add_argument(
        "--drain", action="store_true", help="send what the buffer holds, then exit (no sources)"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    if not 1 <= args.batch_size <= MAX_BATCH:
        parser.error(f"--batch-size must be between 1 and {MAX_BATCH}")
    if not args.drain and not args.socket and not args.input:
        parser.error("give --socket and/or --input (or --drain)")
    return args


def read_token(args) -> str:
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
    else:
        token = os.environ.get("KAMEN_NODE_TOKEN", "").strip()
    if not token:
        raise SystemExit("no node token: set KAMEN_NODE_TOKEN or --token-file")
    return token


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    buffer = Buffer(args.buffer)
    stop = threading.Event()
    sender = Sender(
        buffer,
        Client(args.portal, read_token(args), timeout=args.timeout),
        batch_size=args.batch_size,
        backoff=Backoff(cap=args.max_backoff),
        stop=stop,
    )

    def on_signal(signum, frame):
        logger.info("signal %s: stopping (buffered events stay on disk)", signum)
        stop.set()
        sender.wakeup.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.drain:
        sender.drain()
        left = buffer.pending()
        logger.info("drained: %d sent, %d left", sender.sent, left)
        return 0 if left == 0 else 1

    sources = []
    if args.socket:
        sources.append(SocketSource(args.socket, buffer, sender.wakeup.set))
    for path in args.input:
        sources.append(FileSource(path, buffer, sender.wakeup.set, stop))
    for source in sources:
        source.start()
    logger.info(
        "kamen-node-agent %s: %d events buffered, sending to %s",
        __version__,
        buffer.pending(),
        sender.client.url,
    )
    try:
        sender.run()
    finally:
        for source in sources:
            source.stop()
        logger.info("stopped with %d events buffered", buffer.pending())
    return 0


if __name__ == "__main__":
    sys.exit(main())
