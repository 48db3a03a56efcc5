"""analysis publishes the Pareto maths and the level tolerance that live in study."""

from __future__ import annotations

import analysis
import study._levels
import study._pareto


def test_analysis_re_exports_the_study_maths() -> None:
    functions = [name for name in study._pareto.__all__ if not name.isupper()]
    assert len(functions) == 8  # mask, ranks, crowding, knee, hypervolume, ...
    for name in functions:
        assert name in analysis.__all__
        assert getattr(analysis, name) is getattr(study._pareto, name), name
    assert "LEVEL_TOLERANCE" in analysis.__all__
    assert analysis.LEVEL_TOLERANCE is study._levels.LEVEL_TOLERANCE == 1e-4
