"""Runs the benchmark suite (``python -m benchmarks`` or ``make bench``).

Each benchmark's ``main(argv)`` prints its one-line summary; they run in turn and the
summaries are printed again together at the end. ``--quick`` is passed to the benchmarks
that have a smaller variant; ``--only NAME`` (repeatable) runs a subset. A benchmark whose
module is not there is skipped with a note.

    python -m benchmarks                     # the whole suite
    python -m benchmarks --quick             # smaller variants where there are some
    python -m benchmarks --only search --only analysis
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import time
from collections.abc import Sequence

SUITE = (
    "data",
    "pruners",
    "orchestration",
    "driver",
    "stored",
    "analysis",
    "pareto",
    "search",
    "mo_asha",
    "gpu",
    "grouping",
)
QUICK = {
    "search": "--quick",
    "mo_asha": "--tiny",
    "driver": "--quick",
    "stored": "--quick",
    "grouping": "--quick",
}
"""Benchmarks with a smaller variant, and the option of their ``main`` that selects it."""


class _Tee(io.TextIOBase):
    """Writes to the real stdout and keeps the text (to find the summary line)."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream = stream
        self.text = io.StringIO()

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.text.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def run(name: str, quick: bool) -> tuple[str, str]:
    """Runs one benchmark; returns (status, summary line)."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"benchmarks.{name}":
            raise
        return "skipped", f"benchmarks/{name}.py is not there"
    argv = [QUICK[name]] if quick and name in QUICK else []
    tee = _Tee(sys.stdout)  # type: ignore[arg-type]
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(tee):
            code = module.main(argv)
    except SystemExit as exit_:  # argparse errors and sys.exit inside main
        code = exit_.code
    except Exception as error:  # one broken benchmark must not stop the suite
        return "failed", f"{type(error).__name__}: {error}"
    elapsed = time.perf_counter() - start
    status = "failed" if code else "ok"
    return status, f"{_last_line(tee.text.getvalue())} [{elapsed:.0f} s]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller variants where supported")
    parser.add_argument(
        "--only", action="append", choices=SUITE, metavar="NAME", help=f"one of {SUITE}"
    )
    args = parser.parse_args(argv)
    names = [n for n in SUITE if n in args.only] if args.only else list(SUITE)
    results = []
    for name in names:
        print(f"== benchmarks.{name}", flush=True)
        status, line = run(name, args.quick)
        if status == "skipped":
            print(f"skipped: {line}", flush=True)
        results.append((name, status, line))
    print("\n== summary")
    for name, status, line in results:
        print(f"{name:>13} {status:>7}: {line}")
    return 1 if any(status == "failed" for _, status, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
