"""The ``cdp analytics`` and ``cdp lake`` commands, end to end on the dataset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from cdp.cli import analytics, lake
from cdp.config import Settings, load_settings


@pytest.fixture
def cli(loaded: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("CDP_DATABASE_URL", loaded.dsn())
    monkeypatch.setenv("CDP_DATABASE_SCHEMA", loaded.database_schema or "")
    monkeypatch.setenv("CDP_LAKE_DIR", str(loaded.lake_path))
    load_settings.cache_clear()
    app = typer.Typer()
    analytics.register(app)
    lake.register(app)
    yield app
    load_settings.cache_clear()


def run(app: typer.Typer, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(app, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_analysis_commands_print_json(cli: typer.Typer) -> None:
    ropo = orjson.loads(run(cli, "analytics", "ropo", "--json", "--window-days", "30"))
    assert (ropo["store_purchases"], ropo["ropo_purchases"]) == (4, 2)
    for command in ("funnel", "stage-durations", "paths", "attribution", "drop-off",
                    "touchpoint-lift"):  # fmt: skip
        assert orjson.loads(run(cli, "analytics", command, "--json", "--since", "2026-03-01"))
        assert run(cli, "analytics", command)  # the rich table


def test_sql_command_file_and_repl(cli: typer.Typer, tmp_path: Path) -> None:
    got = orjson.loads(
        run(cli, "analytics", "sql", "--json", "-c", "SELECT count(*) n FROM touchpoints")
    )
    assert got == [{"n": 22}]
    query = tmp_path / "q.sql"
    query.write_text("SELECT customer_id FROM touchpoints WHERE message_id = 'm01'")
    assert orjson.loads(run(cli, "analytics", "sql", "--json", "--file", str(query))) == [
        {"customer_id": "cus_a"}
    ]
    out = run(
        cli, "analytics", "sql", "--json", stdin="SELECT 1 AS x\nSELECT nope\nSELECT 2 AS y\n"
    )
    assert '"x": 1' in out and '"y": 2' in out


def test_sql_error_is_clear(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["analytics", "sql", "-c", "SELECT * FROM nowhere"])
    assert result.exit_code == 1
    assert "nowhere" in result.output


def test_report_is_self_contained(cli: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    run(cli, "analytics", "report", "--out", str(out))
    html = out.read_text()
    assert "<svg" in html and "Stage funnel" in html and "Attribution" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html


def test_lake_compact_keeps_counts(cli: typer.Typer) -> None:
    before = run(cli, "analytics", "sql", "--json", "-c", "SELECT count(*) n FROM touchpoints")
    result = orjson.loads(run(cli, "lake", "compact", "--min-age", "0", "--json"))
    assert result["files_after"] < result["files_before"]
    after = run(cli, "analytics", "sql", "--json", "-c", "SELECT count(*) n FROM touchpoints")
    assert before == after
