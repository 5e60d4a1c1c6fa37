"""PDF of a certificate page, printed by headless Chromium (Debian's `chromium`).

The browser is started with the network off (every host resolves nowhere, every request goes
to a closed proxy port): a certificate page needs nothing from outside, and printing it must
not reach anything either. Chinese text needs a CJK font on the machine (`fonts-noto-cjk`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
OFFLINE_FLAGS = ("--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND")


class NoBrowser(RuntimeError):
    """No headless Chromium on this machine: the PDF cannot be printed (the HTML is kept)."""


def find_browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise NoBrowser("no Chromium found (install Debian's chromium) to print the PDF")


NO_CHINESE_FONT = (
    "没有中文字体 / no Chinese font on this machine: the PDF shows a box in place of every "
    "Chinese character; install one (Debian: fonts-noto-cjk) and issue again (the HTML is right)"
)


def chinese_fonts_missing() -> bool:
    """True when fontconfig, which Chromium draws text with, knows no Chinese font: Chromium
    then prints every Chinese character as a box, and exits 0. False when it cannot be told
    (no `fc-list` on this machine)."""
    listing = shutil.which("fc-list")
    if listing is None:
        return False
    found = subprocess.run([listing, ":lang=zh", "family"], capture_output=True, text=True, timeout=30)
    return found.returncode == 0 and not found.stdout.strip()


def print_pdf(page: Path, target: Path, *, timeout: float = 120) -> Path:
    """Print the HTML file `page` to the PDF `target` (A4, as the page's @page says)."""
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="certificate-browser-") as profile:
        temp = target.with_name(target.name + ".tmp.pdf")
        subprocess.run(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", *OFFLINE_FLAGS, "--no-pdf-header-footer",
             f"--print-to-pdf={temp}", page.resolve().as_uri()],
            check=True, capture_output=True, timeout=timeout,
        )
        if not temp.exists() or temp.stat().st_size == 0:
            raise RuntimeError("Chromium printed no PDF")
        temp.chmod(0o600)
        temp.replace(target)
    return target
