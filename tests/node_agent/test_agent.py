"""The reference node agent against a scripted HTTP server: batches of at
most 1,000 in event-time order, Retry-After on 429, back-off with jitter on
outages, rejected items set aside, and a buffer that survives a restart."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kamen_node_agent.buffer import Buffer, Event
from kamen_node_agent.events import BadEvent, parse_line
from kamen_node_agent.sender import Backoff, Client, Sender, parse_retry_after
from kamen_node_agent.sources import FileSource

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


class ScriptedPortal:
    """Answers POSTs from a script of (status, body, headers); 202 accepting
    everything once the script is used up. Records every request body."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests: list[list[dict]] = []
        self.answers: list[int] = []
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                portal.requests.append(body["heartbeats"])
                portal.auth = self.headers.get("Authorization")
                status, reply, headers = (
                    portal.script.pop(0)
                    if portal.script
                    else (202, {"accepted": len(body["heartbeats"]), "rejected": []}, {})
                )
                portal.answers.append(status)
                raw = json.dumps(reply).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def portal():
    servers = []

    def make(script=()):
        server = ScriptedPortal(script)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def _events(n: int, *, members: int = 10) -> list[Event]:
    return [
        Event(
            member=f"KM{i % members:08d}",
            session="s",
            at=T0 + timedelta(seconds=10 * (i // members)),
        )
        for i in range(n)
    ]


def _sender(buffer, url, *, sleeps=None, **kwargs) -> Sender:
    sleeps = sleeps if sleeps is not None else []
    return Sender(
        buffer,
        Client(url, "node-token", timeout=5),
        backoff=Backoff(base=1.0, cap=8.0, rng=random.Random(7)),
        sleep=sleeps.append,
        **kwargs,
    )


def test_replay_sends_batches_of_at_most_1000_in_event_time_order(tmp_path, portal):
    server = portal()
    buffer = Buffer(tmp_path / "buffer.sqlite3")
    events = _events(2500)
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)  # arrival order is not event order
    buffer.add(shuffled, now=T0)
    sender = _sender(buffer, server.url)
    sender.drain()
    assert [len(r) for r in server.requests] == [1000, 1000, 500]
    sent = [h["at"] for r in server.requests for h in r]
    assert sent == sorted(sent)
    assert sorted(sent) == sorted(e.at_key for e in events)
    assert buffer.pending() == 0 and sender.sent == 2500
    assert server.auth == "Bearer node-token"


def test_429_waits_for_retry_after_and_resends_the_same_batch(tmp_path, portal):
    server = portal([(429, {"error": "throttled", "detail": "slow down"}, {"Retry-After": "17"})])
    buffer = Buffer(tmp_path / "buffer.sqlite3")
    buffer.add(_events(30), now=T0)
    sleeps: list[float] = []
    _sender(buffer, server.url, sleeps=sleeps).drain()
    assert server.answers == [429, 202]
    assert sleeps == [17.0]
    assert server.requests[0] == server.requests[1]
    assert buffer.pending() == 0


def test_retry_after_as_an_http_date_is_honoured():
    now = datetime(2026, 11, 26, 2, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 26 Nov 2026 02:00:42 GMT", now=now) == 42.0
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("soon", now=now) is None


def test_outage_is_retried_with_growing_jittered_backoff_and_nothing_lost(tmp_path, portal):
    server = portal([(503, {}, {})] * 5)
    buffer = Buffer(tmp_path / "buffer.sqlite3")
    buffer.add(_events(20), now=T0)
    sleeps: list[float] = []
    _sender(buffer, server.url, sleeps=sleeps).drain()
    assert server.answers == [503] * 5 + [202]
    # Full jitter: each wait is random within a ceiling that doubles up to the cap.
    ceilings = [1, 2, 4, 8, 8]
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert len(set(sleeps)) == len(sleeps)
    assert len(server.requests[-1]) == 20 and buffer.pending() == 0


def test_unreachable_portal_keeps_events_buffered(tmp_path):
    buffer = Buffer(tmp_path / "buffer.sqlite3")
    buffer.add(_events(5), now=T0)
    stop = threading.Event()
    sleeps: list[float] = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) >= 3:
            stop.set()

    sender = Sender(
        buffer, Client("http://127.0.0.1:9", "t", timeout=1), stop=stop, sleep=sleep
    )  # port 9: nothing listens
    sender.drain()
    assert len(sleeps) == 3 and buffer.pending() == 5


def test_items_the_portal_rejects_are_set_aside_and_the_rest_delivered(tmp_path, portal):
    reply = {"accepted": 2, "rejected": [{"index": 1, "code": "unknown_member", "detail": "x"}]}
    server = portal([(202, reply, {})])
    buffer = Buffer(tmp_path / "buffer.sqlite3")
    buffer.add(_events(3, members=3), now=T0)
    _sender(buffer, server.url).drain()
    assert buffer.pending() == 0
    assert [(e["member"], err) for e, err in buffer.rejected()] == [
        ("KM00000001", "unknown_member")
    ]


def test_a_batch_the_portal_cannot_parse_is_halved_down_to_the_bad_item(tmp_path, portal):
    bad = (400, {"error": "invalid_body", "detail": "x"}, {})
    server = portal([bad, bad, bad])  # 4 items -> 2+2 -> first pair 1+1
    buffer = Buffer(tmp_path / "buffer.sqlite3")
    buffer.add(_events(4, members=4), now=T0)
    _sender(buffer, server.url).drain()
    assert [len(r) for r in server.requests] == [4, 2, 1, 1, 2]
    assert len(buffer.rejected()) == 1 and buffer.pending() == 0


def test_buffered_events_survive_a_restart(tmp_path, portal):
    path = tmp_path / "buffer.sqlite3"
    first = Buffer(path)
    first.add(_events(50), now=T0)
    first.close()  # the agent stops (or crashes) before the portal is back
    server = portal()
    _sender(Buffer(path), server.url).drain()
    assert sum(len(r) for r in server.requests) == 50


def test_a_followed_file_resumes_after_its_last_stored_line(tmp_path):
    log = tmp_path / "events.jsonl"
    lines = [
        json.dumps(
            {"member": "KM00000001", "session": "s", "at": (T0 + timedelta(seconds=i)).isoformat()}
        )
        for i in range(10)
    ]
    log.write_text("\n".join(lines[:6]) + "\n")
    buffer = Buffer(tmp_path / "buffer.sqlite3")

    def read_until(count):
        stop = threading.Event()
        source = FileSource(str(log), buffer, lambda: None, stop)
        source.start()
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while buffer.pending() < count and datetime.now(UTC) < deadline:
            stop.wait(0.05)
        stop.set()
        source.thread.join(5)

    read_until(6)
    with log.open("a") as handle:  # more lines while the agent is down
        handle.write("\n".join(lines[6:]) + "\n")
    read_until(10)  # the restarted agent
    assert buffer.pending() == 10  # nothing read twice, nothing missed


@pytest.mark.parametrize(
    "line,error",
    [
        ('{"member": "KM1", "session": "s", "at": "2026-11-26T10:00:00"}', "offset"),
        ('{"member": "", "session": "s"}', "member"),
        ('{"member": "KM1", "session": "s", "state": "gone"}', "state"),
        ("[1, 2]", "object"),
        ("{nope", "JSON"),
    ],
)
def test_bad_event_lines_are_refused_with_the_reason(line, error):
    with pytest.raises(BadEvent, match=error):
        parse_line(line, now=T0)


def test_an_event_without_a_time_takes_the_agents_clock():
    event = parse_line('{"member": "KM1", "session": "s"}', now=T0)
    assert event.at == T0 and event.state == "alive"


def test_after_an_outage_the_agent_logs_how_long_and_how_much_it_replayed(tmp_path, portal, caplog):
    server = portal([(503, {}, {})] * 3)
    buffer = Buffer(tmp_path / "buffer.sqlite3")
    buffer.add(_events(25), now=T0)
    ticks = iter(range(0, 1000, 20))  # each clock reading is 20 s later
    sender = _sender(buffer, server.url, batch_size=10, clock=lambda: next(ticks))
    with caplog.at_level("INFO", logger="kamen_node_agent"):
        sender.drain()
    assert server.answers == [503, 503, 503, 202, 202, 202]
    resumed = [r.getMessage() for r in caplog.records if "resumed" in r.getMessage()]
    # First failure read the clock at 0 s, the first 202 at 20 s; all 25
    # buffered events were the backlog.
    assert resumed == ["delivery resumed after 20 s, 25 events replayed"]


def test_no_resumed_line_when_nothing_failed(tmp_path, portal, caplog):
    server = portal()
    buffer = Buffer(tmp_path / "buffer.sqlite3")
    buffer.add(_events(5), now=T0)
    with caplog.at_level("INFO", logger="kamen_node_agent"):
        _sender(buffer, server.url).drain()
    assert not [r for r in caplog.records if "resumed" in r.getMessage()]
