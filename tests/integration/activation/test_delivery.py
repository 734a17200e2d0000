"""The actions processor in-process against the real broker and database: a crash
between commit and publish loses no action (fenced redelivery re-publishes it), no
decision before the journey has applied what the watermark passed, and webhook
delivery: signed POSTs to a local server, retries, the dead-letter."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cdp.activation.processor import ActionProcessor
from cdp.activation.rules import DEFAULT_PATH, ActionRules
from cdp.activation.webhook import SIGNATURE_HEADER, Deliverer, verify
from cdp.config import Settings
from cdp.pipeline import fence
from cdp.pipeline.records import Record
from cdp.pipeline.runner import BatchRunner
from cdp.store.connect import connect

SECRET = "s3cret-for-tests"


def resolved(settings: Settings, offset: int, cid: str, mid: str, event: str, ts: str,
             **fields: Any) -> Record:  # fmt: skip
    doc = {"messageId": mid, "type": "track", "event": event, "channel": "web",
           "timestamp": f"2026-03-02T{ts}+00:00", "userId": f"u-{cid}", **fields}  # fmt: skip
    value = orjson.dumps({"kind": "event", "customer_id": cid, "event": doc})
    return Record(settings.topic("touchpoints.resolved"), 0, offset, cid.encode(), value)


def traffic(settings: Settings) -> list[Record]:
    return [
        resolved(settings, 0, "cus_a", "a1", "Product Added", "10:00:00",
                 properties={"product_id": "p1", "price": 10.0}),
        resolved(settings, 1, "cus_b", "b1", "Product Added", "10:05:00"),
        resolved(settings, 2, "cus_z", "z1", "Page Viewed", "12:00:00"),
    ]  # fmt: skip


def journey_applied(db: Any, records: list[Record]) -> None:
    """The journey processor's fence moved past ``records`` (it has applied them)."""
    fence.advance(db, "journey", records)


def progress(settings: Settings, offset: int) -> Record:
    """A wake-up marker the journey publishes after each batch."""
    return Record(settings.topic("journey.progress"), 0, offset, b"journey", b"{}")


def rules_with_webhook(tmp_path: Path, url: str, attempts: int = 3) -> ActionRules:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["destinations"]["crm"] = {
        "type": "webhook", "url": url, "secret_env": "CDP_TEST_WEBHOOK_SECRET",
        "max_attempts": attempts, "backoff": "20ms", "timeout": "2s",
    }  # fmt: skip
    data["rules"][0]["destinations"] = ["kafka", "crm"]
    path = tmp_path / "actions.yaml"
    path.write_text(yaml.safe_dump(data))
    return ActionRules.load(path)


class Hook:
    """A local HTTP server recording POSTs; answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[Any, bytes]] = []  # (case-insensitive headers, body)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((self.headers, body))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    try:
        yield h
    finally:
        h.close()


def test_crash_between_commit_and_publish_republishes(
    settings: Settings, topics: dict[str, str], db: Any, consume: Any
) -> None:
    proc = ActionProcessor(settings)
    records = traffic(settings)
    journey_applied(db, records)
    conn = connect(settings)
    try:  # "crash": the batch commits, nothing is published
        with conn.transaction():
            lost = proc.apply(conn, records)
    finally:
        conn.close()
    assert len(lost.outputs) == 2  # a1 and b1 fired (the page moved the watermark)
    runner = BatchRunner(settings, ActionProcessor(settings))
    try:
        again = runner.run(records)  # the redelivery after the restart
        assert again.stats.get("republished") == 2 and again.stats.get("fenced") == 3
        runner.run(records)  # and once more: still the same two actions
    finally:
        runner.close()
    msgs = [orjson.loads(m.value()) for m in consume(settings.topic("actions"))]
    assert sorted(m["trigger"]["message_id"] for m in msgs) == ["a1", "a1", "b1", "b1"]
    assert {m["action_id"] for m in msgs} == {orjson.loads(o.value)["action_id"]
                                              for o in lost.outputs}  # fmt: skip
    assert db.execute("SELECT count(*) FROM activation_actions").fetchone() == (2,)


def test_no_decision_before_the_journey_has_caught_up(
    settings: Settings, topics: dict[str, str], db: Any
) -> None:
    records = traffic(settings)
    runner = BatchRunner(settings, ActionProcessor(settings))
    try:
        held = runner.run(records)  # the journey has applied nothing yet
        assert held.outputs == [] and held.stats.get("journey_behind") == 1
        journey_applied(db, records[:2])  # a1 and b1, not the page that moved the watermark
        still = runner.run([progress(settings, 0)])
        assert still.outputs == [] and still.stats.get("journey_behind") == 1
        assert db.execute("SELECT count(*) FROM activation_timers").fetchone() == (2,)
        journey_applied(db, records)
        woken = runner.run([progress(settings, 1)])  # the journey's marker wakes it
        assert len(woken.outputs) == 2 and "journey_behind" not in woken.stats
    finally:
        runner.close()
    assert db.execute("SELECT count(*) FROM activation_timers").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM activation_checkpoints").fetchone() == (1,)
    fired = {r[0] for r in db.execute("SELECT trigger_message_id FROM activation_actions")}
    assert fired == {"a1", "b1"}


def test_signed_webhooks(
    settings: Settings, topics: dict[str, str], db: Any, hook: Hook, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, cli: Any,
) -> None:  # fmt: skip
    monkeypatch.setenv("CDP_TEST_WEBHOOK_SECRET", SECRET)
    rules = rules_with_webhook(tmp_path, hook.url)
    runner = BatchRunner(settings, ActionProcessor(settings, rules))
    journey_applied(db, traffic(settings))
    try:
        runner.run(traffic(settings))
    finally:
        runner.close()
    counts = Deliverer(rules).run_once(db)
    assert counts == {"delivered": 2, "retry": 0, "dead": 0}
    assert Deliverer(rules).run_once(db)["delivered"] == 0  # nothing delivered twice
    assert len(hook.received) == 2
    for headers, body in hook.received:
        assert verify(SECRET.encode(), body, headers[SIGNATURE_HEADER])
        assert not verify(b"wrong", body, headers[SIGNATURE_HEADER])
        assert orjson.loads(body)["action_id"] == headers["X-CDP-Action-Id"]
    statuses = db.execute("SELECT DISTINCT status FROM activation_deliveries").fetchall()
    assert statuses == [("delivered",)]

    monkeypatch.setenv("CDP_ACTIONS_RULES", str(tmp_path / "actions.yaml"))
    stats = orjson.loads(cli("actions", "stats", "--json").stdout)
    assert stats["delivered"] == 2 and stats["failed"] == 0


def test_failing_webhook_ends_in_the_dead_letter(
    settings: Settings, topics: dict[str, str], db: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, cli: Any,
) -> None:  # fmt: skip
    monkeypatch.setenv("CDP_TEST_WEBHOOK_SECRET", SECRET)
    failing = Hook(status=503)
    try:
        rules = rules_with_webhook(tmp_path, failing.url, attempts=3)
        runner = BatchRunner(settings, ActionProcessor(settings, rules))
        journey_applied(db, traffic(settings))
        try:
            runner.run(traffic(settings))
        finally:
            runner.close()
        deliverer = Deliverer(rules)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            deliverer.run_once(db)
            pending = db.execute(
                "SELECT count(*) FROM activation_deliveries WHERE status = 'pending'"
            ).fetchone()
            if pending == (0,):
                break
            time.sleep(0.05)
        rows = db.execute(
            "SELECT status, attempts, last_status, last_error FROM activation_deliveries"
        ).fetchall()
        assert rows == [("dead", 3, 503, "HTTP 503")] * 2
        assert len(failing.received) == 6  # 3 attempts each, all signed
        # replay puts them back; a healthy receiver then gets them
        failing.status = 200
        monkeypatch.setenv("CDP_ACTIONS_RULES", str(tmp_path / "actions.yaml"))
        stats = orjson.loads(cli("actions", "stats", "--json").stdout)
        assert stats["failed"] == 2
        out = cli("actions", "replay", "--since", "2000-01-01T00:00:00")
        assert out.exit_code == 0, out.output
        assert deliverer.run_once(db)["delivered"] == 2
    finally:
        failing.close()


def test_records_the_actions_processor_cannot_read_are_dead_lettered(
    settings: Settings, topics: dict[str, str], db: Any, consume: Any
) -> None:
    """Unreadable resolved or transition records (another client's, an older version's)
    are dead-lettered with their reason; the batch goes through and the good event in it
    is taken."""
    res, trans = settings.topic("touchpoints.resolved"), settings.topic("journey.transitions")
    good = resolved(settings, 3, "cus_a", "a1", "Product Added", "10:00:00")
    bad_transitions = [b"{oops", b"[1]",
                       orjson.dumps({"customer_id": "c", "to": "decision", "event_time": 7}),
                       orjson.dumps({"customer_id": "c", "to": "decision",
                                     "event_time": "0001-01-01T00:00:00+01:00"})]  # fmt: skip
    records = [
        Record(res, 0, 0, b"k", b"[1]"),
        Record(res, 0, 1, b"k", orjson.dumps({"kind": "merge", "winner": "c"})),
        Record(res, 0, 2, b"k", orjson.dumps({"kind": "event", "customer_id": "c", "event": {}})),
        good,
        *(Record(trans, 0, i, b"c", v) for i, v in enumerate(bad_transitions)),
    ]
    journey_applied(db, [r for r in records if r.topic == res])
    runner = BatchRunner(settings, ActionProcessor(settings))
    try:
        result = runner.run(records)
    finally:
        runner.close()
    reasons = sorted(d.reason for d in result.dead_letters)
    assert reasons == sorted(["not_an_object", "wrong_type", "missing_field", "invalid_json",
                              "not_an_object", "wrong_type", "invalid_value"])  # fmt: skip
    assert len(consume(settings.topic("deadletter"), n=7)) == 7
    seen = db.execute("SELECT message_id FROM seen_messages WHERE consumer = 'actions'")
    assert "a1" in {r[0] for r in seen}
