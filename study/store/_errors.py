"""Errors of the results store."""

from __future__ import annotations

from trials.errors import ParetuneError


class StoreError(ParetuneError):
    """A results-store operation failed; the one-line message never holds a password."""


class TransientStoreError(StoreError):
    """A failure worth retrying: a lost connection, a locked SQLite database."""
