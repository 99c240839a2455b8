"""Train a small CNN on scikit-learn's handwritten digits (8x8 images, 10 classes) with lazytensor.

Every step (forward, backward, Adam update) is one lazy graph that the scheduler fuses and that
Optimizer.step() realizes in one go; the plan is cached, so later steps only launch kernels.

    pip install -e ".[examples]" && python examples/train_digits.py [--epochs 20] [--no-progress]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import lazytensor as lt
from lazytensor import nn
from lazytensor.nn import functional as F
from lazytensor.utils.data import DataLoader, TensorDataset


def load_digits_split(test_fraction: float = 0.2, seed: int = 0):
    """The digits dataset as (train images, train labels, test images, test labels), images (N, 1, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits   # ships with scikit-learn: nothing is downloaded
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(len(labels) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


class DigitsCNN(nn.Module):
    """conv(1→16) → relu → conv(16→32) → relu → maxpool 2 → linear(512→10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: lt.Tensor) -> lt.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def accuracy(model: nn.Module, images: lt.Tensor, labels: np.ndarray) -> float:
    """Fraction of images whose highest logit is the true label (eval mode, no gradients)."""
    model.eval()
    with lt.no_grad():
        predicted = model(images).argmax(1).numpy()
    model.train()
    return float((predicted == labels).mean())


def train(epochs: int = 20, batch_size: int = 64, lr: float = 3e-3, progress: bool = True, seed: int = 0) -> dict:
    """Train and evaluate; returns accuracy, wall time, steps per second and kernels per step."""
    lt.manual_seed(seed)
    x_train, y_train, x_test, y_test = load_digits_split(seed=seed)
    loader = DataLoader(TensorDataset(lt.tensor(x_train), lt.tensor(y_train)), batch_size=batch_size,
                        shuffle=True, drop_last=True, generator=seed)
    model = DigitsCNN()
    optimizer = lt.optim.Adam(model.parameters(), lr=lr)
    test_images = lt.tensor(x_test)
    bar = _progress_bar(epochs * len(loader), progress)
    start = time.perf_counter()
    steps, kernels_per_step = 0, 0
    for epoch in range(epochs):
        for images, labels in loader:
            with lt.count_kernels() as counter:
                loss = F.cross_entropy(model(images), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()      # realizes forward + backward + update (and the loss) as one schedule
            kernels_per_step = counter.kernels
            steps += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    train_seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    result = {"test_accuracy": accuracy(model, test_images, y_test), "train_seconds": train_seconds,
              "steps": steps, "steps_per_second": steps / train_seconds, "kernels_per_step": kernels_per_step}
    return result


def _progress_bar(total: int, enabled: bool):
    """A tqdm bar when tqdm is installed and progress is wanted, else None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    result = train(args.epochs, args.batch_size, args.lr, progress=not args.no_progress)
    print(f"test accuracy {result['test_accuracy'] * 100:.2f}%  |  {result['steps']} steps in "
          f"{result['train_seconds']:.1f} s ({result['steps_per_second']:.1f} steps/s)  |  "
          f"{result['kernels_per_step']} kernels per training step")


if __name__ == "__main__":
    main()
