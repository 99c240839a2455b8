"""Write the VIZ page for one training step of the digits CNN (forward, backward, Adam update).

    python examples/viz_training_step.py [--out digits_step.html] [--trace digits_step.json]

Open the page in any browser (it works offline): the fused kernel graph with the reason for every
kernel boundary and each kernel's time, the op graph coloured by kernel, and the generated source
of a kernel on click. The first (warm-up) step compiles the kernels; the page shows the second.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # train_digits.py lives next to this file

import lazytensor as lt  # noqa: E402
from lazytensor.nn import functional as F  # noqa: E402
from train_digits import DigitsCNN, load_digits_split  # noqa: E402


def make_training_step(batch_size: int = 64, seed: int = 0):
    """(model, step): step() runs one forward + backward + Adam update on a fixed batch."""
    lt.manual_seed(seed)
    images, labels, _, _ = load_digits_split(seed=seed)
    x, y = lt.tensor(images[:batch_size]), lt.tensor(labels[:batch_size])
    model = DigitsCNN()
    optimizer = lt.optim.Adam(model.parameters(), lr=3e-3)

    def training_step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()     # forward, backward and update realize here as one schedule
    return model, training_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="digits_step.html", help="where to write the page")
    parser.add_argument("--trace", default=None, help="also write a chrome://tracing / Perfetto trace here")
    args = parser.parse_args()
    model, training_step = make_training_step()
    training_step()                                   # warm-up: compiles (or loads) every kernel
    names = dict(model.named_parameters())
    path = lt.viz.show(training_step, path=args.out, names=names, title="digits CNN: one training step")
    print(f"wrote {path}")
    with lt.Profiler() as profile:
        training_step()
    profile.table(row_limit=10)
    if args.trace:
        print(f"wrote {profile.export_chrome_trace(args.trace)}")


if __name__ == "__main__":
    main()
