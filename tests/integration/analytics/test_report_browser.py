"""The HTML report opened in a real headless browser: the charts render.

Chromium (Debian's `chromium` package; `make test` installs it when it can) takes a
screenshot of the report; the PNG is decoded here and must show chart colours over
a large area, not just a blank page or text.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import typer

from tests.integration.analytics.test_cli import cli, run  # noqa: F401  (the fixture)

BROWSER_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError(
        "no Chromium found: install Debian's `chromium` package (make test does this as root)"
    )


def _pixels(png: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        data = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", data[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        prev = line
    pixels = [tuple(r[x : x + 3]) for r in rows[::4] for x in range(0, stride, channels * 4)]
    return width, height, pixels


def test_report_charts_render_in_chromium(cli: typer.Typer, tmp_path: Path) -> None:  # noqa: F811
    report = tmp_path / "report.html"
    run(cli, "analytics", "report", "--out", str(report))
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [_browser(), *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.exists(), proc.stderr[-2000:]
    width, height, pixels = _pixels(shot.read_bytes())
    assert (width, height) == (1280, 2400)
    colours = Counter(pixels)
    # Chart bars are saturated colours: a page of text only has greys.
    saturated = sum(n for (r, g, b), n in colours.items() if max(r, g, b) - min(r, g, b) > 60)
    assert saturated > len(pixels) * 0.01, f"no chart colours found ({len(colours)} colours)"
