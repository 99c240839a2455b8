"""How many threads the CPU kernels run on: every usable core, fewer while other processes keep some busy.

An OpenMP thread that reaches the end of a parallel loop spins, waiting for the others, before it
sleeps. When another process keeps one of the cores busy, a kernel split across all cores then waits
for its thread on that core to get a time slice, and the spinning threads take time from everyone.
Measured on this 2-core machine with a third process busy on one core: a jit-captured MLP train
step took 92 ms on 2 threads and 4.9 ms on 1, a 512³ matmul 32 ms and 2.8 ms (quiet machine:
2.5 ms and 1.4 ms on 2 threads). Waiting passively (OMP_WAIT_POLICY=passive) avoids the collapse but
costs 20-40% on a quiet machine, since every kernel then wakes its threads from sleep.

So the launcher asks a ThreadGovernor before each kernel. At most every CHECK_INTERVAL_S it reads how
much CPU time the usable cores spent busy (/proc/stat) minus what this process used (os.times), and
sets OpenMP's thread count (omp_set_num_threads) to the cores the other processes leave free.
LAZYTENSOR_ADAPTIVE_THREADS=0 turns it off; OMP_NUM_THREADS stays the upper bound.
"""
from __future__ import annotations

import math
import os
import threading
from typing import Callable

CHECK_INTERVAL_S = 0.1
"""Seconds between two looks at the cores' load (a look reads /proc/stat: ~20 µs)."""
FREE_CORE_SHARE = 0.5
"""A core counts as free when other processes used at most this share of it since the last look."""

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)   # user, nice, system, irq, softirq, steal (idle and iowait are not busy)


def usable_cores() -> list[int]:
    """The CPU numbers this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def read_busy_seconds(cores: list[int]) -> float | None:
    """CPU seconds the given cores have spent busy since boot (/proc/stat), or None where unreadable."""
    ticks_per_s = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    wanted = {f"cpu{c}" for c in cores}
    busy = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, _, rest = line.partition(" ")
                if name in wanted:
                    values = rest.split()
                    busy += sum(int(values[i]) for i in _BUSY_FIELDS if i < len(values))
    except (OSError, ValueError):
        return None
    return busy / ticks_per_s


def own_cpu_seconds() -> float:
    """CPU seconds this process (all its threads, OpenMP's included) and its finished child processes
    (the C compiler building kernels) have used: neither is another process's load."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class ThreadGovernor:
    """Chooses the kernels' thread count from the other processes' load (see the module docstring).

    `set_threads(n)` applies a count to the calling thread's OpenMP runtime; the readers are
    parameters so tests can play back a load."""

    def __init__(self, max_threads: int, set_threads: Callable[[int], None],
                 busy_seconds: Callable[[], float | None] | None = None,
                 own_seconds: Callable[[], float] = own_cpu_seconds, cores: int | None = None) -> None:
        core_list = usable_cores()
        self.cores = cores if cores is not None else len(core_list)
        self.max_threads = max(1, max_threads)
        self.threads = self.max_threads
        self.changes = 0
        self._set_threads = set_threads
        self._busy_seconds = busy_seconds or (lambda: read_busy_seconds(core_list))
        self._own_seconds = own_seconds
        self._last: tuple[float, float, float] | None = None   # (wall, busy, own) at the last look
        self.next_check = 0.0
        self._applied = threading.local()

    def threads_for(self, others_busy_cores: float) -> int:
        """Threads to run with when other processes keep `others_busy_cores` cores busy."""
        free = math.floor(self.cores - others_busy_cores + FREE_CORE_SHARE)
        return max(1, min(self.max_threads, free))

    def update(self, now: float) -> None:
        """Look at the load since the last look (called by the launcher once `now` >= next_check)."""
        self.next_check = now + CHECK_INTERVAL_S
        busy = self._busy_seconds()
        if busy is None:
            self.next_check = float("inf")   # no /proc/stat: keep every thread
            return
        own = self._own_seconds()
        if self._last is not None:
            wall = now - self._last[0]
            if wall > 0:
                others = max(0.0, (busy - self._last[1]) - (own - self._last[2])) / wall
                threads = self.threads_for(others)
                if threads != self.threads:
                    self.threads = threads
                    self.changes += 1
        self._last = (now, busy, own)

    def apply(self) -> None:
        """Give the calling thread's OpenMP runtime the current count (once per change and thread)."""
        if getattr(self._applied, "threads", None) != self.threads:
            self._set_threads(self.threads)
            self._applied.threads = self.threads


def adaptive_threads_enabled() -> bool:
    """False when LAZYTENSOR_ADAPTIVE_THREADS=0 asks for a fixed thread count."""
    return os.environ.get("LAZYTENSOR_ADAPTIVE_THREADS", "1").strip() not in ("0", "false", "no", "")
