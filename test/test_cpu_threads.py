"""The CPU runtime's thread governor (runtime/cpu_threads.py): fewer OpenMP threads while other
processes keep cores busy. The load is played back through the governor's readers, so nothing here
depends on what else the machine is doing."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import lazytensor as lt
from lazytensor.runtime import cpu_threads
from lazytensor.runtime.cpu_threads import CHECK_INTERVAL_S, ThreadGovernor, adaptive_threads_enabled
from lazytensor.runtime.device import get_runtime


class PlayedLoad:
    """Busy seconds of all cores and of this process, advanced by hand."""

    def __init__(self) -> None:
        self.busy, self.own = 0.0, 0.0

    def run(self, seconds: float, others_cores: float, own_cores: float) -> None:
        self.busy += seconds * (others_cores + own_cores)
        self.own += seconds * own_cores


def _governor(cores: int, max_threads: int, load: PlayedLoad, applied: list[int]) -> ThreadGovernor:
    return ThreadGovernor(max_threads, applied.append, busy_seconds=lambda: load.busy,
                          own_seconds=lambda: load.own, cores=cores)


@pytest.mark.parametrize("others,threads", [(0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (1.5, 1), (5.0, 1)])
def test_threads_for_leaves_the_cores_other_processes_hold(others, threads):
    gov = _governor(2, 2, PlayedLoad(), [])
    assert gov.threads_for(others) == threads


@pytest.mark.parametrize("cores,max_threads,others,threads", [(8, 8, 2.2, 6), (8, 4, 2.0, 4), (4, 4, 0.0, 4),
                                                               (4, 4, 3.7, 1)])
def test_threads_for_stays_within_the_bound_and_at_least_one(cores, max_threads, others, threads):
    assert _governor(cores, max_threads, PlayedLoad(), []).threads_for(others) == threads


def test_update_follows_the_played_load_and_counts_only_other_processes():
    load, applied = PlayedLoad(), []
    gov = _governor(2, 2, load, applied)
    gov.update(0.0)                               # first look: nothing to compare with yet
    assert gov.threads == 2 and gov.next_check == pytest.approx(CHECK_INTERVAL_S)
    load.run(0.1, others_cores=0.0, own_cores=2.0)  # our own threads busy on both cores: not a load
    gov.update(0.1)
    assert gov.threads == 2
    load.run(0.1, others_cores=1.0, own_cores=1.0)  # another process on one core
    gov.update(0.2)
    assert gov.threads == 1 and gov.changes == 1
    gov.apply()
    gov.apply()
    assert applied == [1]                         # applied once per change
    load.run(0.1, others_cores=0.1, own_cores=1.0)  # it went away
    gov.update(0.3)
    gov.apply()
    assert gov.threads == 2 and applied == [1, 2]


def test_apply_sets_the_count_once_per_launching_thread():
    load, applied = PlayedLoad(), []
    gov = _governor(2, 2, load, applied)
    gov.apply()
    worker = threading.Thread(target=gov.apply)
    worker.start()
    worker.join()
    gov.apply()
    assert applied == [2, 2]                      # the main thread and the worker each once


def test_unreadable_load_keeps_every_thread_and_stops_looking():
    gov = ThreadGovernor(2, lambda n: None, busy_seconds=lambda: None, cores=2)
    gov.update(5.0)
    assert gov.threads == 2 and gov.next_check == float("inf")


def test_proc_stat_reading_grows_with_time():
    first = cpu_threads.read_busy_seconds(cpu_threads.usable_cores())
    if first is None:
        pytest.skip("no /proc/stat here")
    sum(i * i for i in range(200_000))            # some busy time on our core
    second = cpu_threads.read_busy_seconds(cpu_threads.usable_cores())
    assert second is not None and second >= first


def test_adaptive_threads_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("LAZYTENSOR_ADAPTIVE_THREADS", "0")
    assert not adaptive_threads_enabled()
    monkeypatch.setenv("LAZYTENSOR_ADAPTIVE_THREADS", "1")
    assert adaptive_threads_enabled()


def test_kernels_give_the_same_result_on_one_thread_and_on_all():
    a, b = lt.randn(300, 200).realize(), lt.randn(200, 96).realize()
    want = a.numpy() @ b.numpy()
    runtime = get_runtime("CPU")
    (a @ b).realize()                             # loads a kernel library: the governor exists now
    gov = runtime.governor
    if gov is None:
        pytest.skip("kernels are built without OpenMP here")
    saved = gov.threads, gov.next_check
    try:
        for threads in (1, gov.max_threads):
            gov.threads, gov.next_check = threads, float("inf")
            fresh = lt.tensor(a.numpy())          # new buffers: the kernel runs again, not a cached value
            got = (fresh @ b).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    finally:
        gov.threads, gov.next_check = saved
