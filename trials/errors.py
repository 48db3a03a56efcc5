"""The base of errors a user can fix (torch-free, importable from every package)."""

from __future__ import annotations


class ParetuneError(Exception):
    """An error caused by input a user can fix: a bad config, a missing folder, a typo.

    The CLI prints the message as one line and exits with :attr:`exit_code`, without a
    traceback, so messages must name the field or path, the rule and the value got.
    """

    exit_code = 2
