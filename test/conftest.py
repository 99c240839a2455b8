"""Shared test setup: a private compile cache per test session (so runs do not depend on a
user's cache) and deterministic seeds."""
from __future__ import annotations

import os
import re
import tempfile
import zlib

import pytest

# The compile cache must be chosen before lazytensor reads it.
os.environ.setdefault("LAZYTENSOR_CACHE", os.path.join(tempfile.gettempdir(), "lazytensor-test-cache"))
# Prove every kernel's indices in range before it runs (a lowering bug fails loudly, never reads wild memory).
os.environ.setdefault("VALIDATE", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default=None,
                     help="lazytensor device the tests run on (CPU, CL, CUDA); default: the one "
                          "CPU=1 / CL=1 / CUDA=1 selects, else CPU")
    parser.addoption("--sample", type=int, default=1, metavar="K",
                     help="run a deterministic 1-in-K subsample of each parametrized test's cases, "
                          "stratified by op (see sample_cases); non-parametrized tests always run. "
                          "For devices where every kernel compiles slowly (OpenCL through PoCL); default 1: all")
    parser.addoption("--record-kernels", default=None, metavar="DIR",
                     help="record every distinct kernel AST the tests compile into DIR (one file per "
                          "process; sets LAZYTENSOR_RECORD_KERNELS), for test_cuda_compile.py --kernels-from")
    parser.addoption("--kernels-from", default=None, metavar="DIR",
                     help="test_cuda_compile.py: compile every kernel recorded in DIR (by --record-kernels) "
                          "to PTX with nvcc")


def pytest_configure(config: pytest.Config) -> None:
    """Pick the device new tensors go to, and fail at once (not in every test) if it cannot start."""
    import lazytensor as lt
    from lazytensor.runtime.device import DeviceUnavailable, get_runtime
    record_dir = config.getoption("--record-kernels")
    if record_dir:
        os.environ["LAZYTENSOR_RECORD_KERNELS"] = os.path.abspath(record_dir)   # subprocesses record too
        from lazytensor import kernel_record
        kernel_record.start_recording(record_dir)
    chosen = config.getoption("--device")
    try:
        if chosen:
            lt.Device.DEFAULT = chosen
        get_runtime(lt.Device.DEFAULT)
    except (DeviceUnavailable, ValueError, RuntimeError) as e:
        raise pytest.UsageError(f"lazytensor test device: {e}") from None


def pytest_report_header(config: pytest.Config) -> str:
    import lazytensor as lt
    from lazytensor.runtime.device import get_runtime
    sample = config.getoption("--sample")
    note = f"; --sample {sample}: 1 in {sample} cases of each op" if sample > 1 else ""
    return f"lazytensor device: {lt.Device.DEFAULT} ({get_runtime(lt.Device.DEFAULT)!r}){note}"


def case_family(item: pytest.Item) -> str:
    """The op a parametrized case tests: the leading name of its id ("add(2, 1)(1, 3)-float32" -> "add",
    "leaky_relu@kinks-float32" -> "leaky_relu"); "" when the id starts with no name (a shape tuple)."""
    found = re.match(r"[A-Za-z_][A-Za-z0-9_]*", item.callspec.id)
    return found.group(0) if found else ""


def sample_cases(items: list[pytest.Item], k: int) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """(kept, dropped): of each (test function, op family) group of parametrized cases, every k-th case
    in collection order, starting at an offset fixed by a CRC of the group's name. So every op keeps at
    least one case, and the kept dtypes/shapes rotate from op to op (all of them appear across the file);
    the choice depends only on the test ids, never on the run."""
    groups: dict[tuple[str, str], list[pytest.Item]] = {}
    for item in items:
        if hasattr(item, "callspec"):
            key = (item.nodeid.split("[", 1)[0], case_family(item))
            groups.setdefault(key, []).append(item)
    chosen: set[int] = set()
    for key, members in groups.items():
        offset = zlib.crc32("::".join(key).encode()) % k
        picked = members[offset::k] or [members[offset % len(members)]]
        chosen.update(id(m) for m in picked)
    kept = [it for it in items if not hasattr(it, "callspec") or id(it) in chosen]
    dropped = [it for it in items if hasattr(it, "callspec") and id(it) not in chosen]
    return kept, dropped


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--sample K: deselect all but a deterministic 1-in-K subsample of parametrized cases."""
    k = config.getoption("--sample")
    if k < 1:
        raise pytest.UsageError(f"--sample must be a positive integer, got {k}")
    if k == 1:
        return
    kept, dropped = sample_cases(items, k)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _seed():
    import numpy as np
    import lazytensor as lt
    lt.manual_seed(0)
    np.random.seed(0)
    yield
