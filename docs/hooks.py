"""MkDocs hooks (named in ``mkdocs.yml``, kept out of the site by ``exclude_docs``).

- The overview page is the README, its links to ``docs/`` made relative.
- The docstrings' Sphinx roles (``:func:`run_trial```, ``:class:`~trials.TrialResult```)
  become code that links to the object's entry in the API reference when the site has
  one (by its full dotted name, else by a unique last part), and plain code otherwise.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- README -->"
ROLE = re.compile(r":(?:func|class|data|meth|mod|attr|exc|obj|const):<code>(~?)([^<]+)</code>")
XREF = re.compile(r'<code class="xref" data-ref="([^"]+)">([^<]+)</code>')
ANCHOR = re.compile(r'id="([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+)"')


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replaces the marker of ``index.md`` with the README (``docs/x.md`` -> ``x.md``)."""
    if MARKER not in markdown:
        return markdown
    readme = re.sub(r"\]\(docs/", "](", README.read_text(encoding="utf-8"))
    return markdown.replace(MARKER, readme)


def on_page_content(content: str, page: Any, config: Any, files: Any) -> str:
    """Marks every role's target; :func:`on_post_build` links it once all anchors exist."""

    def mark(match: re.Match[str]) -> str:
        short, text = match.group(1), html.unescape(match.group(2))
        target = text.removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if short else text
        return f'<code class="xref" data-ref="{html.escape(target)}">{html.escape(shown)}</code>'

    return ROLE.sub(mark, content)


def on_post_build(config: Any) -> None:
    """Links the marked roles to the API reference's anchors (plain code when none)."""
    site = Path(config["site_dir"])
    pages = sorted(site.rglob("*.html"))
    anchors: dict[str, Path] = {}
    for page in pages:
        if page.parent.name == "api":
            for anchor in ANCHOR.findall(page.read_text(encoding="utf-8")):
                anchors.setdefault(anchor, page)
    by_last: dict[str, list[str]] = {}
    for anchor in anchors:
        by_last.setdefault(anchor.rsplit(".", 1)[-1], []).append(anchor)

    def resolve(target: str) -> str | None:
        if target in anchors:
            return target
        ends = [a for a in by_last.get(target.rsplit(".", 1)[-1], []) if a.endswith(f".{target}")]
        return ends[0] if len(ends) == 1 else None

    for page in pages:
        text = page.read_text(encoding="utf-8")
        if 'class="xref"' not in text:
            continue

        def link(match: re.Match[str], page: Path = page) -> str:
            code = f"<code>{match.group(2)}</code>"
            anchor = resolve(html.unescape(match.group(1)))
            if anchor is None:
                return code
            href = os.path.relpath(anchors[anchor], page.parent)
            return f'<a href="{href}#{anchor}">{code}</a>'

        page.write_text(XREF.sub(link, text), encoding="utf-8")
