"""The torch-free packages stay torch-free (STYLE 7)."""

from __future__ import annotations

import subprocess
import sys


def test_study_search_spaces_analysis_do_not_import_torch(repo_root):
    code = (
        "import sys, study, search_spaces, analysis, study.cli\n"
        "heavy = [m for m in ('torch', 'trials.data', 'trials.models') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)
