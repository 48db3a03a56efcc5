"""Database URLs with their passwords hidden."""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://[^:/@\s]*):(?P<password>[^@\s]*)@")


def redact_url(url: str | URL) -> str:
    """``url`` with its password replaced by ``***`` (also for unparsable strings)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: hide anything between ``user:`` and ``@``
        return _USERINFO.sub(r"\g<scheme>:***@", str(url))


def scrub(text: str, password: str | None) -> str:
    """``text`` with every occurrence of ``password`` (and of URL passwords) hidden."""
    if "@" in text:
        text = _USERINFO.sub(r"\g<scheme>:***@", text)
    if password:
        text = text.replace(password, "***")
    return text
