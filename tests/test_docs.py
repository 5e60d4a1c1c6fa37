"""The docs name what exists: every repository path and every dotted Python name a page
mentions in backticks is there, so a rename cannot leave a page pointing at nothing."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("*/README.md")])
TOP_FOLDERS = ("pipelines", "assets", "schemas", "expectations", "tests", "sandbox", "bench",
               "docs", "scripts", "requirements", ".ci", "deploy")
CODE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(rf"^(?:{'|'.join(re.escape(f) for f in TOP_FOLDERS)})/[\w./-]*$")
OUTPUT_FOLDERS = ("bench/out", "tests/artifacts")  # written by benchmarks and tests, not kept in git
DOTTED = re.compile(r"^(?:pipelines|assets|sandbox)(?:\.\w+)+$")


def mentions(page: Path) -> list[str]:
    return [token.strip() for token in CODE.findall(page.read_text(encoding="utf-8"))]


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                target = getattr(target, attribute)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_page_names_exists(page):
    missing = [
        token for token in mentions(page)
        if PATH.match(token) and not token.startswith(OUTPUT_FOLDERS) and not (ROOT / token).exists()
    ]
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dotted_name_a_page_names_resolves(page):
    missing = [token for token in mentions(page) if DOTTED.match(token) and not resolves(token)]
    assert not missing, f"{page.relative_to(ROOT)} names modules or attributes that do not exist: {missing}"


def test_there_are_pages_to_check():
    assert len(PAGES) >= 8
