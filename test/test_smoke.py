"""The issue's first example, end to end, against NumPy."""
import numpy as np

import lazytensor as lt


def test_readme_example_matches_numpy():
    a = lt.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = lt.randn(2, 2)
    c = ((a @ b).relu() + 1).sum(dim=1)
    c.realize()
    bn = b.numpy()
    want = np.maximum(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32) @ bn, 0).sum(1) + 2
    np.testing.assert_allclose(c.numpy(), want, rtol=1e-5)
    assert c.shape == (2,) and c.dtype == lt.float32 and c.device == "CPU"
    assert c.tolist() == c.numpy().tolist()
