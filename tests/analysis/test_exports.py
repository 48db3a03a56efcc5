"""analysis publishes the Pareto maths and the level tolerance that live in study."""

from __future__ import annotations

import analysis
import study._levels
import study._pareto

MATHS = (
    "as_minimization",
    "crowding_distance",
    "default_reference",
    "hypervolume",
    "hypervolume_trace",
    "knee_point",
    "non_dominated_sort",
    "pareto_mask",
)


def test_analysis_re_exports_the_study_maths() -> None:
    assert set(MATHS) <= set(study._pareto.__all__)
    for name in MATHS:
        assert name in analysis.__all__
        assert getattr(analysis, name) is getattr(study._pareto, name), name
    assert "LEVEL_TOLERANCE" in analysis.__all__
    assert analysis.LEVEL_TOLERANCE is study._levels.LEVEL_TOLERANCE == 1e-4
