"""Delivery: batches of at most 1,000 heartbeats, oldest event time first, to
``POST /api/v1/heartbeats/`` with the node token.

- 202: the batch is removed from the buffer; items the portal rejected (named
  by index) are kept in the buffer's ``rejected`` table and logged.
- 429: wait what ``Retry-After`` says (seconds or an HTTP date), then resend.
- connection errors, timeouts, 5xx, 401/403 (a token being rotated): retry
  with exponential back-off and full jitter, never dropping anything.
- 413: the batch is halved; 400 on a batch: halved down to the one item the
  portal refuses, which is then set aside as rejected.

A batch leaves the buffer only after its 202, and the next batch is read
only then, so delivery is at least once and in event-time order.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from . import __version__
from ._compat import UTC
from .buffer import Buffer, Stored

logger = logging.getLogger("kamen_node_agent")

MAX_BATCH = 1000


@dataclass
class Reply:
    status: int
    body: dict
    retry_after: float | None


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Backoff:
    """Exponential back-off with full jitter (a random wait between 0 and
    base * 2^attempt, capped), so many agents recovering from the same outage
    do not return in lockstep."""

    def __init__(self, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None):
        self.base, self.cap = base, cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class Client:
    def __init__(self, portal_url: str, token: str, *, timeout: float = 30.0):
        if not portal_url.startswith(("http://", "https://")):
            raise ValueError("the portal URL must start with http:// or https://")
        base = portal_url.rstrip("/")
        self.url = base if base.endswith("/heartbeats") else base + "/api/v1/heartbeats"
        self.url += "/"
        self.token = token
        self.timeout = timeout

    def post(self, heartbeats: list[dict]) -> Reply:
        """One request. Raises OSError (URLError, timeouts) when no answer came."""
        body = json.dumps({"heartbeats": heartbeats}, separators=(",", ":")).encode()
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in __init__
            self.url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"kamen-node-agent/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return self._reply(response.status, response.read(), response.headers)
        except urllib.error.HTTPError as error:
            with error:
                return self._reply(error.code, error.read(), error.headers)

    @staticmethod
    def _reply(status: int, raw: bytes, headers) -> Reply:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        retry_after = parse_retry_after(headers.get("Retry-After"), now=datetime.now(UTC))
        return Reply(status, body, retry_after)


class Sender:
    """Drains the buffer to the portal until stopped."""

    def __init__(
        self,
        buffer: Buffer,
        client: Client,
        *,
        batch_size: int = MAX_BATCH,
        backoff: Backoff | None = None,
        stop: threading.Event | None = None,
        sleep=None,
        clock=time.monotonic,
    ):
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch size must be 1..{MAX_BATCH}")
        self.buffer = buffer
        self.client = client
        self.batch_size = batch_size
        self.backoff = backoff or Backoff()
        self.stop = stop or threading.Event()
        self.wakeup = threading.Event()
        # Waits go through here so they end at once on stop (and tests can
        # observe them).
        self._sleep = sleep or self._interruptible_sleep
        self.sent = 0
        self.clock = clock
        # Outage bookkeeping for the one "delivery resumed" line an operator
        # looks for: when the first failure happened, and once the portal
        # answers again, how much backlog is left to replay.
        self._failing_since: float | None = None
        self._resumed_after = 0.0
        self._replay_left: int | None = None
        self._replayed = 0

    def _interruptible_sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def run(self, *, linger: float = 0.2, idle_wait: float = 1.0) -> None:
        while not self.stop.is_set():
            if self.buffer.pending() == 0:
                self.wakeup.wait(idle_wait)
                self.wakeup.clear()
                continue
            # A moment for a burst to fill the batch.
            if self.buffer.pending() < self.batch_size:
                self.stop.wait(linger)
            self.send_once()

    def drain(self) -> None:
        """Send until the buffer is empty (or stopped)."""
        while not self.stop.is_set() and self.buffer.pending():
            self.send_once()

    def send_once(self) -> None:
        batch = self.buffer.oldest(self.batch_size)
        if batch:
            self._deliver(batch)

    def _deliver(self, batch: list[Stored]) -> None:
        """Deliver one batch, retrying until it is accepted (or stopped)."""
        while not self.stop.is_set():
            try:
                reply = self.client.post([s.heartbeat for s in batch])
            except OSError as exc:
                if self._failing_since is None:
                    self._failing_since = self.clock()
                delay = self.backoff.next_delay()
                logger.warning("portal unreachable (%s); retrying in %.1f s", exc, delay)
                self._sleep(delay)
                continue
            if reply.status == 202:
                if self._failing_since is not None:
                    self._resumed_after = self.clock() - self._failing_since
                    self._failing_since = None
                    self._replay_left, self._replayed = self.buffer.pending(), 0
                self._accepted(batch, reply.body)
                self.backoff.reset()
                self._replay_progress(len(batch))
                return
            if reply.status == 429:
                delay = reply.retry_after if reply.retry_after is not None else None
                if delay is None:
                    delay = self.backoff.next_delay()
                logger.info("throttled by the portal; waiting %.1f s (Retry-After)", delay)
                self._sleep(delay)
                continue
            if reply.status in (400, 413) and len(batch) > 1:
                # Halve: a too-large body, or one item the portal cannot parse
                # at all, is isolated without holding up the rest.
                half = len(batch) // 2
                logger.warning("portal answered %s to %d items; halving", reply.status, len(batch))
                self._deliver(batch[:half])
                self._deliver(batch[half:])
                return
            if reply.status in (400, 413):
                error = str(reply.body.get("error") or reply.status)
                logger.error("portal refuses %s: %s", batch[0].heartbeat, error)
                self.buffer.reject([(batch[0], error)], now=datetime.now(UTC))
                return
            if self._failing_since is None:  # 5xx, 401/403: the portal is not taking them
                self._failing_since = self.clock()
            delay = self.backoff.next_delay()
            logger.warning(
                "portal answered %s (%s); retrying in %.1f s",
                reply.status,
                reply.body.get("error", ""),
                delay,
            )
            self._sleep(delay)

    def _replay_progress(self, delivered: int) -> None:
        """Log once the backlog that built up during an outage is delivered
        (oldest first, so it leaves before anything that arrived after)."""
        if self._replay_left is None:
            return
        self._replayed += delivered
        self._replay_left -= delivered
        if self._replay_left <= 0 or self.buffer.pending() == 0:
            logger.info(
                "delivery resumed after %.0f s, %d events replayed",
                self._resumed_after,
                self._replayed,
            )
            self._replay_left = None

    def _accepted(self, batch: list[Stored], body: dict) -> None:
        rejected = {}
        for item in body.get("rejected") or []:
            if isinstance(item, dict) and isinstance(item.get("index"), int):
                rejected[item["index"]] = str(item.get("code") or item.get("error") or "rejected")
        bad = [(batch[i], error) for i, error in rejected.items() if 0 <= i < len(batch)]
        for stored, error in bad:
            logger.warning("portal rejected %s: %s", stored.heartbeat, error)
        bad_ids = {s.id for s, _ in bad}
        self.buffer.reject(bad, now=datetime.now(UTC))
        self.buffer.remove([s.id for s in batch if s.id not in bad_ids])
        self.sent += len(batch) - len(bad)
