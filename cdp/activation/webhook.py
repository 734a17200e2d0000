"""Webhook delivery of fired actions: signed POSTs with retries and a dead-letter.

The outbox is ``activation_deliveries``: the actions processor inserts one row per
(action, webhook destination) in the same transaction as the action, so every fired
action is scheduled exactly once. :class:`Deliverer` (``cdp actions deliver``) works
through due rows, one transaction per row (``FOR UPDATE SKIP LOCKED``: run as many
deliverers as you like):

- the body is the action JSON; ``X-CDP-Signature: sha256=<hex>`` is the HMAC-SHA256 of
  the exact body bytes with the destination's secret (``secret_env``), plus
  ``X-CDP-Action-Id`` (receivers de-duplicate on it: delivery is at-least-once) and
  ``X-CDP-Attempt``;
- a 2xx response marks the row ``delivered``; anything else (status, timeout,
  connection refused) schedules a retry after ``backoff * 2**(attempts-1)``;
- after ``max_attempts`` the row is ``dead`` with the last error: the dead-letter.
  ``cdp actions replay`` puts dead (or delivered) rows back to ``pending``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import psycopg

from cdp.activation.rules import ActionRules, Destination

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-CDP-Signature"


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    status: int | None
    error: str | None


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Attempt:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        return Attempt(False, exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return Attempt(False, None, str(getattr(exc, "reason", exc)))
    return Attempt(200 <= status < 300, status, None if status < 300 else f"HTTP {status}")


def backoff_delay(dest: Destination, attempts: int) -> timedelta:
    factor: int = 2 ** max(0, attempts - 1)
    return dest.backoff * factor


class Deliverer:
    def __init__(
        self,
        rules: ActionRules | None = None,
        sender: Callable[[str, bytes, dict[str, str], float], Attempt] = post,
    ) -> None:
        self.rules = rules or ActionRules.load()
        self.destinations = self.rules.webhooks()
        self.sender = sender

    def run_once(self, conn: psycopg.Connection[Any], limit: int = 1000) -> dict[str, int]:
        """Attempt every delivery due now (at most ``limit``); returns counts."""
        counts = {"delivered": 0, "retry": 0, "dead": 0}
        for _ in range(limit):
            outcome = self._one(conn)
            if outcome is None:
                break
            counts[outcome] += 1
        return counts

    def run(
        self,
        conn_factory: Callable[[], psycopg.Connection[Any]],
        interval_s: float = 1.0,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not should_stop():
            try:
                if conn is None or conn.closed:
                    conn = conn_factory()
                counts = self.run_once(conn)
                if any(counts.values()):
                    log.info("deliveries %s", counts)
            except psycopg.Error as exc:
                log.warning("delivery loop: database error, retrying: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(interval_s)

    def _one(self, conn: psycopg.Connection[Any]) -> str | None:
        with conn.transaction():
            row = conn.execute(
                "SELECT d.action_id, d.destination, d.attempts, a.payload"
                " FROM activation_deliveries d JOIN activation_actions a USING (action_id)"
                " WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
                " ORDER BY d.next_attempt_at, d.action_id LIMIT 1"
                " FOR UPDATE OF d SKIP LOCKED"
            ).fetchone()
            if row is None:
                return None
            action_id, name, attempts, payload = row
            attempts += 1
            dest = self.destinations.get(name)
            if dest is None or dest.url is None:
                attempt = Attempt(False, None, f"destination {name!r} is not configured")
                dest_max = attempts  # nothing to retry against: dead at once
            else:
                body = orjson.dumps(payload)
                try:
                    secret = dest.signing_secret()
                except Exception as exc:  # a missing secret: never send unsigned
                    attempt = Attempt(False, None, str(exc))
                else:
                    headers = {
                        "Content-Type": "application/json",
                        SIGNATURE_HEADER: sign(secret, body),
                        "X-CDP-Action-Id": action_id,
                        "X-CDP-Attempt": str(attempts),
                        "User-Agent": "cdp-activation/1",
                    }
                    attempt = self.sender(dest.url, body, headers, dest.timeout.total_seconds())
                dest_max = dest.max_attempts
            if attempt.ok:
                conn.execute(
                    "UPDATE activation_deliveries SET status = 'delivered', attempts = %s,"
                    " last_status = %s, last_error = NULL, delivered_at = now(),"
                    " updated_at = now() WHERE action_id = %s AND destination = %s",
                    (attempts, attempt.status, action_id, name),
                )
                return "delivered"
            dead = attempts >= dest_max
            delay = backoff_delay(dest, attempts) if dest is not None else timedelta(0)
            conn.execute(
                "UPDATE activation_deliveries SET status = %s, attempts = %s, last_status = %s,"
                " last_error = %s, next_attempt_at = now() + %s, updated_at = now()"
                " WHERE action_id = %s AND destination = %s",
                ("dead" if dead else "pending", attempts, attempt.status,
                 (attempt.error or "")[:2000], delay, action_id, name),
            )  # fmt: skip
            if dead:
                log.error("delivery of %s to %s is dead: %s", action_id, name, attempt.error)
            return "dead" if dead else "retry"
