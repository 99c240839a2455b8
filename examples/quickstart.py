"""lazytensor in one minute: record a graph, look at the kernels it fuses into, run them.

    python examples/quickstart.py
"""
import numpy as np

import lazytensor as lt

lt.manual_seed(0)
a = lt.tensor([[1.0, 2.0], [3.0, 4.0]])
b = lt.randn(2, 2)
c = ((a @ b).relu() + 1).sum(dim=1)   # records a graph; nothing runs yet

print("kernels this realize will run:")
lt.explain(c)

c.realize()                           # schedule → render C → compile (cached) → run
print("\nresult:", c.numpy(), c.tolist(), c.shape, c.dtype, c.device)

# the same numbers from NumPy, for comparison (NumPy only checks; it computed nothing above)
want = np.maximum(a.numpy() @ b.numpy(), 0).sum(1) + 2
print("numpy:  ", want)

# a bigger fused graph: softmax over rows of a 512 x 512 matrix, then a weighted sum
x = lt.randn(512, 512)
w = lt.rand(512)
y = (x.softmax(-1) * w).sum(-1)
print(f"\nsoftmax-weighted sum: {len(y.schedule())} kernels; first values {y.numpy()[:4]}")
