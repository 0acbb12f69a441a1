"""The demo's report in headless Chromium: it renders, every image decodes, no console errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from test_report import demo_output

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        message = "no chromium: install the Debian package `chromium` (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; it is required in CI.")
        pytest.skip(message)
    return found


def _browse(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    cmd = [_chromium(), *_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


@pytest.fixture(scope="module")
def report() -> Path:
    return demo_output() / "report.html"


def test_demo_report_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    done = _browse(tmp_path, report, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.exists(), done.stderr[-2000:]
    pixels = np.asarray(mpimg.imread(shot))
    assert pixels.shape[0] == 2000 and pixels.shape[1] == 1280
    assert float(pixels[..., :3].std()) > 0.05  # text, header and figures, not one flat colour
    assert float((pixels[..., :3].mean(axis=2) < 0.5).mean()) > 0.02  # a fair share of ink
    assert _console(done.stderr) == []


def test_demo_report_images_decode_without_console_errors(report: Path, tmp_path: Path) -> None:
    done = _browse(tmp_path, report, "--virtual-time-budget=5000", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    marker = re.search(r'<div id="selfcheck"[^>]*>([^<]*)</div>', done.stdout)
    assert marker is not None, "the page's self-check did not run"
    tag = marker.group(0)
    images = int(re.search(r'data-images="(\d+)"', tag).group(1))  # type: ignore[union-attr]
    broken = int(re.search(r'data-broken="(\d+)"', tag).group(1))  # type: ignore[union-attr]
    assert marker.group(1) == "images-ok"
    assert images == report.read_text(encoding="utf-8").count("<img ") >= 10
    assert broken == 0
    assert _console(done.stderr) == []
