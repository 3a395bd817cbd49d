"""Headless Chromium: render a report page to a screenshot, or read back the DOM after it loaded.

Chromium is a system package (``apt-get install chromium``); nothing here downloads a browser.
The flags keep it off the network and away from the user's profile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qxai.errors import QxaiError

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--hide-scrollbars", "--virtual-time-budget=10000",
)  # fmt: skip


def find_chromium() -> str | None:
    """Path of a Chromium binary (``QXAI_CHROMIUM`` overrides), or None."""
    override = os.environ.get("QXAI_CHROMIUM")
    if override:
        return override
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = find_chromium()
    if binary is None:
        raise QxaiError("no Chromium found; install it (apt-get install chromium) or set QXAI_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="qxai-chromium-") as profile:
        return subprocess.run(
            [binary, *_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip


def screenshot(
    page: str | os.PathLike[str], png: str | os.PathLike[str], width: int = 1280, height: int = 2400,
    timeout: float = 120,
) -> Path:  # fmt: skip
    """Render ``page`` (an HTML file) headless and save a ``width × height`` PNG screenshot."""
    from qxai.io import write_bytes

    url = Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="qxai-shot-") as folder:
        tmp = Path(folder) / "shot.png"  # Chromium picks the format from the suffix
        done = _run([f"--screenshot={tmp}", f"--window-size={width},{height}", url], timeout)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise QxaiError(f"Chromium made no screenshot of {page}: {done.stderr.strip()[-200:]}")
        return write_bytes(png, tmp.read_bytes())


@dataclass
class LoadedPage:
    """What the page looked like after it loaded: its DOM and what its load script recorded."""

    dom: str
    images: int
    broken_images: int
    sections: list[str]


def load_page(page: str | os.PathLike[str], timeout: float = 120) -> LoadedPage:
    """Load ``page`` in headless Chromium, run its scripts, and read back the resulting DOM."""
    done = _run(["--dump-dom", Path(page).resolve().as_uri()], timeout)
    dom = done.stdout
    if "<body" not in dom:
        raise QxaiError(f"Chromium returned no page for {page}: {done.stderr.strip()[-200:]}")
    images = re.search(r'data-images="(\d+)"', dom)
    broken = re.search(r'data-broken-images="(\d+)"', dom)
    return LoadedPage(
        dom=dom,
        images=int(images.group(1)) if images else -1,
        broken_images=int(broken.group(1)) if broken else -1,
        sections=re.findall(r'data-section="([^"]+)"', dom),
    )


def main() -> None:
    """``python -m qxai.report.browser PAGE PNG``: the README's screenshot command."""
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m qxai.report.browser PAGE.html OUT.png")
    try:
        print(screenshot(sys.argv[1], sys.argv[2]))
    except QxaiError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
