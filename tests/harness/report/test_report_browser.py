"""The HTML leaderboard in a real browser: headless Chromium renders its tables and figures."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
from PIL import Image


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert path, "headless Chromium is needed (scripts/setup.sh installs it: apt-get install -y chromium)"
    return path


def run_chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: CI containers run as root; a private profile so parallel runs never share one.
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    out = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_chromium_renders_the_tables_and_figures(synthetic_report, tmp_path):
    url = synthetic_report["html"].resolve().as_uri()
    shot = tmp_path / "leaderboard.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64) / 255.0
    assert pixels.shape[:2] == (2000, 1280)
    non_white = (pixels.min(axis=2) < 0.9).mean()
    # Plot lines, bands and bars are saturated colours; text, borders and table shading are greys.
    saturated = ((pixels.max(axis=2) - pixels.min(axis=2)) > 0.3).mean()
    assert pixels.std() > 0.05 and non_white > 0.03, (pixels.std(), non_white)
    assert saturated > 0.005, saturated

    dom = run_chromium(tmp_path, "--dump-dom", url).stdout
    tables = re.findall(r"<table class=\"(\w+)\">(.*?)</table>", dom, flags=re.S)
    assert [name for name, _ in tables] == ["leaderboard", "budget"]
    leaderboard_rows = re.findall(r"<tr>(.*?)</tr>", tables[0][1], flags=re.S)
    assert len(leaderboard_rows) == 1 + 3  # header and one row per algorithm
    assert "0.430 [0.410, 0.450]" in tables[0][1]
    images = re.findall(r"<img [^>]*src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"", dom)
    assert len(images) == 4 and all(len(data) > 10_000 for data in images)
