"""Shared test setup: a private compile cache per test session (so runs do not depend on a
user's cache) and deterministic seeds."""
from __future__ import annotations

import os
import tempfile

import pytest

# The compile cache must be chosen before lazytensor reads it.
os.environ.setdefault("LAZYTENSOR_CACHE", os.path.join(tempfile.gettempdir(), "lazytensor-test-cache"))
# Prove every kernel's indices in range before it runs (a lowering bug fails loudly, never reads wild memory).
os.environ.setdefault("VALIDATE", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default=None,
                     help="lazytensor device the tests run on (CPU, CL, CUDA); default: the one "
                          "CPU=1 / CL=1 / CUDA=1 selects, else CPU")


def pytest_configure(config: pytest.Config) -> None:
    """Pick the device new tensors go to, and fail at once (not in every test) if it cannot start."""
    import lazytensor as lt
    from lazytensor.runtime.device import DeviceUnavailable, get_runtime
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
    return f"lazytensor device: {lt.Device.DEFAULT} ({get_runtime(lt.Device.DEFAULT)!r})"


@pytest.fixture(autouse=True)
def _seed():
    import numpy as np
    import lazytensor as lt
    lt.manual_seed(0)
    np.random.seed(0)
    yield
