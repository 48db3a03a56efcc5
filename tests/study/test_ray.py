"""Starting and stopping a local Ray (no study)."""

from __future__ import annotations

import pytest


def test_workers_get_the_study_s_variables_of_this_process_and_quiet_warnings(monkeypatch):
    from study._ray import runtime_environment

    monkeypatch.setenv("PARETUNE_CACHE", "/cache")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setenv("SOMETHING_ELSE", "1")
    assert runtime_environment() == {
        "env_vars": {"PYTHONWARNINGS": "ignore::DeprecationWarning", "PARETUNE_CACHE": "/cache"}
    }


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


@pytest.mark.integration
def test_work_beside_a_starting_ray_runs_in_a_thread_and_ray_stops_after_the_block(
    monkeypatch, tmp_path
):
    import threading

    import ray

    from study._ray import local_ray_beside, wait_for_stopping

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.chdir(tmp_path)
    threads: list[str] = []
    with local_ray_beside(lambda: threads.append(threading.current_thread().name)) as local:
        assert local is not None and ray.is_initialized()
        assert threads == ["paretune-beside-ray"]
    wait_for_stopping()
    assert not ray.is_initialized() and local.reaper.poll() is not None
    assert list(tmp_path.iterdir()) == []  # Ray started from its own session folder


@pytest.mark.integration
def test_what_the_work_beside_ray_raises_is_raised_once_ray_is_up_and_ray_stops(monkeypatch):
    import ray

    from study._ray import local_ray_beside, wait_for_stopping

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

    def bad_config() -> None:
        raise ValueError("dataset.root: /no/such/folder does not exist")

    ran = False
    with pytest.raises(ValueError, match="/no/such/folder"), local_ray_beside(bad_config):
        ran = True
    assert not ran
    wait_for_stopping()
    assert not ray.is_initialized()
