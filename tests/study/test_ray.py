"""Starting and stopping a local Ray (no study)."""

from __future__ import annotations

import pytest


@pytest.mark.integration
def test_a_ray_stopping_in_the_background_is_waited_for_by_the_next_start(monkeypatch):
    import ray

    from study._ray import _STOPPING, start_ray

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # start_ray sets it; undone after
    if ray.is_initialized():
        pytest.fail("a Ray was left running by an earlier test")
    first = start_ray(None, num_cpus=1)
    assert first is not None
    first.stop_in_background()
    assert _STOPPING  # still stopping: the shutdown takes about a second
    second = start_ray(None, num_cpus=1)  # waits for the first, then starts its own
    try:
        assert second is not None and second.session != first.session
        assert first.reaper.poll() is not None and not _STOPPING
        assert ray.is_initialized()
    finally:
        if second is not None:
            second.stop()
    assert not ray.is_initialized()
