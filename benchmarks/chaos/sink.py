"""The SMTP sink of the fault campaign: a real SMTP server (aiosmtpd) on
loopback that appends every message it accepts to a JSON-lines file, flushed
to disk before it answers 250, so a message counted here is one the portal
was told was delivered.

    python -m benchmarks.chaos.sink PORT FILE
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "to": sorted(envelope.rcpt_tos),
            "subject": str(message.get("Subject", "")),
            "message_id": str(message.get("Message-ID", "")),
            "body": body.get_content() if body is not None else "",
        }
        with self.lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return "250 OK"


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Recorder(path), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
