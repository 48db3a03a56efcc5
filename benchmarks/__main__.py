"""Runs every benchmark in turn (``python -m benchmarks`` or ``make bench``)."""

from __future__ import annotations

import importlib
import sys

SUITE = ("data", "pruners", "orchestration", "analysis")


def main() -> int:
    failures = 0
    for name in SUITE:
        print(f"== benchmarks.{name}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        failures += int(bool(module.main([])))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
