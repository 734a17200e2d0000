"""``cdp generate``: output targets, truth file, summary, Kafka delivery errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from cdp.cli.generate import register
from cdp.events.validate import parse_object
from cdp.kafka.producer import DeliveryError

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root (keeps `generate` a sub-command)."""

    register(app)
    return app


def _run(*args: str) -> Any:
    return runner.invoke(_app(), ["generate", "--customers", "40", "--days", "20", *args])


def test_needs_exactly_one_target(tmp_path: Path) -> None:
    for args in ((), ("--out", str(tmp_path / "x.jsonl"), "--to-kafka")):
        result = _run(*args)
        assert result.exit_code == 1
        assert "exactly one of --out" in result.stderr


def test_file_truth_and_json_summary(tmp_path: Path) -> None:
    out, truth = tmp_path / "ev.jsonl", tmp_path / "truth.json"
    result = _run("--out", str(out), "--truth", str(truth), "--json")
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    lines = out.read_bytes().splitlines()
    assert summary["events"] == len(lines) > 0
    assert {"persons", "duplicates", "junk_values", "seconds"} <= set(summary)
    events = [orjson.loads(line) for line in lines]
    for ev in events:
        parse_object(ev)
    doc = orjson.loads(truth.read_bytes())
    assert set(doc["events"]) == {ev["messageId"] for ev in events}
    assert len(doc["identifiers"]) == summary["identifiers"]


def test_stdout_is_pure_jsonl() -> None:
    result = _run("--out", "-", "--json", "--seed", "5")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines and all(orjson.loads(line)["messageId"] for line in lines)
    assert '"events"' in result.stderr  # the summary goes to stderr here


class FakeProducer:
    sent: list[Mapping[str, Any]] = []
    fail = False

    def __init__(self, *, source: str) -> None:
        assert source == "generator"

    def send(self, event: Mapping[str, Any]) -> None:
        FakeProducer.sent.append(event)

    def flush(self) -> None:
        if FakeProducer.fail:
            raise DeliveryError([("user_id:x", "Broker: timed out")])


def test_to_kafka_sends_and_reports_delivery_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cdp.kafka.producer.Producer", FakeProducer)
    FakeProducer.sent, FakeProducer.fail = [], False
    result = _run("--to-kafka", "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["events"] == len(FakeProducer.sent) > 0

    FakeProducer.fail = True
    result = _run("--to-kafka")
    assert result.exit_code == 1
    assert "not delivered" in result.stderr


def test_rate_limits_throughput(tmp_path: Path) -> None:
    result = runner.invoke(
        _app(),
        ["generate", "--customers", "3", "--days", "2", "--rate", "200", "--json",
         "--out", str(tmp_path / "r.jsonl")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    if summary["events"] > 40:
        assert summary["events_per_second"] <= 260
