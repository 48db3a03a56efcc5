"""On-disk cache of rendered arrays: one ``.npz`` per configuration, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

#: Environment variable naming the cache folder (default ``~/.cache/paretune``).
CACHE_ENV = "PARETUNE_CACHE"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``override``, else ``$PARETUNE_CACHE``, else ``~/.cache/paretune``."""
    if override is not None:
        return Path(override).expanduser()
    from_env = os.environ.get(CACHE_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".cache" / "paretune"


def config_key(config: Mapping[str, object]) -> str:
    """A stable hex digest of a JSON-serialisable configuration (key order ignored)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes ``arrays`` to ``path`` (an uncompressed ``.npz``) atomically.

    The data goes to a temporary file in the same folder that then replaces ``path`` in
    one step, so a concurrent reader sees either no file or a complete one, and two
    writers of the same configuration simply both succeed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache may be shared
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **cast(dict[str, Any], arrays))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays stored at ``path``, or ``None`` if it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
