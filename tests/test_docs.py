"""The README and docs pages: every relative link and picture points at something that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_SRC = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The page without code blocks and inline code, where brackets are not links."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page (duplicates get -1, -2, ...)."""
    slugs: set[str] = set()
    counts: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        slugs.add(slug if n == 0 else f"{slug}-{n}")
    return slugs


def broken_links(page: Path) -> list[str]:
    """Relative links and picture paths of ``page`` whose file or heading does not exist."""
    prose = _prose(page.read_text(encoding="utf-8"))
    broken = []
    for target in _LINK.findall(prose) + _HTML_SRC.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # http:, https:, mailto: ...
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor.lower() not in anchors(resolved):
            broken.append(f"{target} (no such heading in {resolved.name})")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_picture_exists(page: Path):
    assert broken_links(page) == []


def test_the_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path):
    (tmp_path / "other.md").write_text("# Real heading\n\n## In spandrel (chaiNNer, ComfyUI)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#real-heading) [ok](other.md#in-spandrel-chainner-comfyui) [ok](#top)\n"
        "# Top\n![gone](missing.png) [gone](other.md#no-heading) [web](https://example.org/x)\n"
        "`[code](not-a-link.md)`\n```\n[fenced](not-a-link-either.md)\n```\n"
    )
    assert broken_links(page) == [
        "missing.png (no such file)",
        "other.md#no-heading (no such heading in other.md)",
    ]


def test_the_readme_keeps_set_up_on_its_first_screen_and_the_test_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.index("## Set up") < text.index("pip install") < 1500
    assert re.search(r"^```bash\n(?:.*\n)*?python -m pytest\n```", text, re.MULTILINE)
