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


@pytest.fixture(autouse=True)
def _seed():
    import numpy as np
    import lazytensor as lt
    lt.manual_seed(0)
    np.random.seed(0)
    yield
