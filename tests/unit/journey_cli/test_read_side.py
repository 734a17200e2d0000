"""The journey read side without services: summary parsing, argument checks, key
extraction, command registration, and clean failures when the database is away."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from cdp.cli import journey, sources
from cdp.collector import create_app
from cdp.collector.profiles import READ_KEY_PREFIX, generate_read_key, request_key
from cdp.config import Settings, load_settings
from cdp.journey import JourneyRules, Summary
from cdp.journey.queries import JourneyQueries, JourneyQueryError, last_touchpoints
from tests.unit.journey.events import at, ev

# nothing listens on port 1: connecting fails at once
DOWN = Settings(
    database_url=SecretStr("postgresql://cdp:cdp@127.0.0.1:1/cdp"), kafka_bootstrap="x:1"
)


def test_last_touchpoints_from_a_stored_summary() -> None:
    rules = JourneyRules.load()
    summary = Summary.of(
        [
            ev("m1", "web", "Product Viewed", at(0), product_id="p"),
            ev("m2", "web", "Product Added", at(1), product_id="p", price=3.0),
            ev("m3", "store", "Order Completed", at(2), revenue=3.0),
            ev("m0", "web", "Ad Clicked", at(-1)),
        ],
        rules,
    )
    assert last_touchpoints(summary.to_json()) == {
        "store": {"at": at(2).isoformat(), "event": "Order Completed", "message_id": "m3"},
        "web": {"at": at(1).isoformat(), "event": "Product Added", "message_id": "m2"},
    }
    assert last_touchpoints({}) == {} == last_touchpoints(None)  # rows with summary '{}'
    assert last_touchpoints({"touch": {"web": ["junk"]}}) == {}


class _NoDB:
    def execute(self, *_: Any) -> Any:
        raise AssertionError("arguments are checked before any query")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stage": "nope"}, "unknown stage"),
        ({"older_than_days": -1}, ">= 0"),
        ({"limit": 0}, "--limit"),
        ({"limit": 10_001}, "--limit"),
    ],
)
def test_stuck_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(JourneyQueryError, match=message):
        JourneyQueries(_NoDB()).stuck(**kwargs)  # type: ignore[arg-type]


def test_read_key_extraction() -> None:
    basic = "Basic " + base64.b64encode(b"rk_abc:").decode()
    assert request_key(basic) == "rk_abc"
    assert request_key("Bearer rk_abc") == "rk_abc"
    assert request_key("bearer  rk_abc ") == "rk_abc"
    for bad in (None, "", "Bearer", "Bearer   ", "Token rk_abc", "Basic !!!"):
        assert request_key(bad) is None, bad
    key = generate_read_key()
    assert key.startswith(READ_KEY_PREFIX) and len(key) >= 32
    assert key != generate_read_key()


def _cli(*modules: Any) -> typer.Typer:
    app = typer.Typer()
    for module in modules:
        module.register(app)
    return app


def test_commands_are_registered() -> None:
    from cdp.cli.main import app

    runner = CliRunner()
    out = runner.invoke(app, ["journey", "--help"]).output
    assert all(cmd in out for cmd in ("show", "stuck", "stats"))
    out = runner.invoke(app, ["sources", "--help"]).output
    assert all(cmd in out for cmd in ("add-read-key", "list-read-keys", "revoke-read-key"))
    for cmd in (["show", "--help"], ["stuck", "--help"], ["stats", "--help"]):
        assert "--json" in runner.invoke(app, ["journey", *cmd]).output


@pytest.mark.parametrize(
    "args",
    [
        ["journey", "show", "email:ann@example.nl", "--json"],
        ["journey", "stuck", "--json"],
        ["journey", "stats"],
        ["sources", "add-read-key", "x"],
    ],
)
def test_database_down_is_a_clean_error(args: list[str]) -> None:
    env = {
        "CDP_DATABASE_URL": DOWN.dsn(),
        "CDP_KAFKA_BOOTSTRAP": "x:1",
        "CDP_DATABASE_SCHEMA": "",
    }
    load_settings.cache_clear()
    try:
        result = CliRunner().invoke(_cli(journey, sources), args, env=env)
    finally:
        load_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)  # typer.Exit, not a traceback


def test_profile_route_without_key_or_database() -> None:
    async def run() -> list[httpx.Response]:
        # ASGITransport runs no lifespan: the pool stays closed, as if the database is away
        transport = httpx.ASGITransport(app=create_app(DOWN))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            path = "/v1/profiles/email:ann@example.nl"
            return [
                await client.get(path),
                await client.get(path, headers={"Authorization": "Token x"}),
                await client.get(path, headers={"Authorization": "Bearer rk_whatever"}),
                await client.post(path),
            ]

    missing, wrong_scheme, down, post = asyncio.run(run())
    assert (missing.status_code, missing.json()["error"]) == (401, "unauthorized")
    assert wrong_scheme.status_code == 401
    # a key we cannot check is not a 401 (nor a 404): the database is away
    assert (down.status_code, down.json()["error"]) == (503, "unavailable")
    assert post.status_code == 405
