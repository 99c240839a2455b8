"""lt.utils.data against torch.utils.data: the same batches (values, nesting, types), lengths and
errors for the same datasets and arguments; shuffling is a permutation, reproducible under a seed and
different across epochs; TensorDataset batches are one gather per tensor."""
from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import lazytensor as lt
import lazytensor.utils.data as ltd


def to_plain(x):
    """Batches of either library as nested Python data for comparison (tensors → (dtype, list))."""
    if isinstance(x, lt.Tensor):
        return (x.dtype.name, tuple(x.shape), x.numpy().tolist())
    if isinstance(x, torch.Tensor):
        return (str(x.dtype).replace("torch.", ""), tuple(x.shape), x.numpy().tolist())
    if isinstance(x, dict):
        return {k: to_plain(v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__,) + tuple(to_plain(v) for v in x)
    if isinstance(x, (list, tuple)):
        return type(x)(to_plain(v) for v in x)
    return x


def assert_same_batches(ours, theirs):
    a, b = [to_plain(batch) for batch in ours], [to_plain(batch) for batch in theirs]
    assert a == b


DATA_X = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
DATA_Y = np.arange(7, dtype=np.int64) * 10


def tensor_datasets():
    return (ltd.TensorDataset(lt.tensor(DATA_X), lt.tensor(DATA_Y)),
            tud.TensorDataset(torch.from_numpy(DATA_X), torch.from_numpy(DATA_Y)))


LOADER_ARGS = [
    dict(),
    dict(batch_size=2),
    dict(batch_size=3, drop_last=True),
    dict(batch_size=7),
    dict(batch_size=10),
    dict(batch_size=10, drop_last=True),
    dict(batch_size=None),
]


@pytest.mark.parametrize("kwargs", LOADER_ARGS, ids=str)
def test_tensor_dataset_batches_match_torch(kwargs):
    ours, theirs = tensor_datasets()
    lo, lt_ = ltd.DataLoader(ours, **kwargs), tud.DataLoader(theirs, **kwargs)
    assert len(lo) == len(lt_)
    assert_same_batches(lo, lt_)


class Dictionaries(ltd.Dataset):
    """Samples mixing every kind default_collate handles (the torch twin is built the same way)."""

    Point = collections.namedtuple("Point", ["x", "y"])

    def __init__(self, make_tensor, n=5):
        self.make_tensor, self.n = make_tensor, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng(i)
        return {"image": self.make_tensor(rng.standard_normal((2, 2)).astype(np.float32)),
                "label": i, "weight": 0.5 * i, "flag": i % 2 == 0, "name": f"s{i}",
                "np_array": rng.integers(0, 9, (3,)), "np_scalar": np.float32(i), "np_int": np.int64(i),
                "pair": (i, self.make_tensor(np.array([i, -i], dtype=np.int32))),
                "list": [float(i), i + 1], "point": self.Point(i, float(i)),
                "nested": {"a": [self.make_tensor(np.array(i, dtype=np.float64))]}}


class TorchDictionaries(tud.Dataset):
    def __init__(self, n=5):
        self.inner = Dictionaries(torch.from_numpy, n)

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


@pytest.mark.parametrize("kwargs", [dict(batch_size=2), dict(batch_size=5), dict(batch_size=None),
                                    dict(batch_size=3, drop_last=True)], ids=str)
def test_nested_samples_collate_like_torch(kwargs):
    ours = ltd.DataLoader(Dictionaries(lt.tensor), **kwargs)
    theirs = tud.DataLoader(TorchDictionaries(), **kwargs)
    assert len(ours) == len(theirs)
    assert_same_batches(ours, theirs)


COLLATE_CASES = [
    ("ints", [1, 2, 3]),
    ("floats", [1.5, 2.0]),
    ("bools", [True, False]),
    ("strings", ["a", "b"]),
    ("tuples_become_lists", [(1, 2.0), (3, 4.0)]),
    ("lists", [[1, 2], [3, 4]]),
    ("dicts", [{"a": 1, "b": [1.0]}, {"a": 2, "b": [2.0]}]),
    ("np_arrays", [np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32)]),
    ("np_0d_arrays", [np.array(1.5), np.array(2.5)]),
    ("np_scalars", [np.int32(1), np.int32(2)]),
    ("np_bools", [np.bool_(True), np.bool_(False)]),
    ("ordered_dict", [collections.OrderedDict(b=1, a=2), collections.OrderedDict(b=3, a=4)]),
]


@pytest.mark.parametrize("name,batch", COLLATE_CASES, ids=[c[0] for c in COLLATE_CASES])
def test_default_collate_matches_torch(name, batch):
    got = ltd.default_collate(batch)
    want = tud.default_collate(batch)
    assert to_plain(got) == to_plain(want)
    if not isinstance(want, torch.Tensor):
        assert type(got) is type(want)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "uint8", "bool"])
def test_default_collate_stacks_tensors(dtype):
    samples = [lt.tensor(np.arange(6).reshape(2, 3) + i).to(getattr(lt, dtype)) for i in range(3)]
    want = tud.default_collate([torch.from_numpy(np.arange(6).reshape(2, 3) + i).to(getattr(torch, dtype))
                                for i in range(3)])
    got = ltd.default_collate(samples)
    assert got.dtype.name == dtype and tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())


DEFAULT_CONVERT_CASES = [
    ("np_array", np.arange(4)),
    ("np_scalar", np.float64(2.5)),
    ("python_number", 3),
    ("tuple", (np.ones(2), "x")),
    ("dict", {"a": np.zeros(3, np.int16), "b": [np.int8(1)]}),
]


@pytest.mark.parametrize("name,data", DEFAULT_CONVERT_CASES, ids=[c[0] for c in DEFAULT_CONVERT_CASES])
def test_default_convert_matches_torch(name, data):
    assert to_plain(ltd.default_convert(data)) == to_plain(tud.default_convert(data))


COLLATE_ERRORS = [
    ("unequal_lists", [[1, 2], [3]], RuntimeError, "each element in list of batch should be of equal size"),
    ("objects", [object(), object()], TypeError, "batch must contain tensors"),
    ("string_arrays", [np.array(["a"]), np.array(["b"])], TypeError, "batch must contain tensors"),
]


@pytest.mark.parametrize("name,batch,exc,match", COLLATE_ERRORS, ids=[c[0] for c in COLLATE_ERRORS])
def test_default_collate_errors_like_torch(name, batch, exc, match):
    with pytest.raises(exc, match=match):
        tud.default_collate(batch)
    with pytest.raises(exc, match=match):
        ltd.default_collate(batch)


def test_collate_of_different_shapes_fails_in_stack():
    with pytest.raises(Exception, match="stack"):
        ltd.default_collate([lt.ones(2), lt.ones(3)]).realize()


# ---------------------------------------------------------------- efficient TensorDataset batches

def test_tensor_dataset_batch_is_one_lazy_gather(monkeypatch):
    """A batch must not come from per-sample __getitem__ + stack: one index op per tensor, lazy."""
    ours, _ = tensor_datasets()
    calls = []
    monkeypatch.setattr(ltd.TensorDataset, "__getitem__", lambda self, i: calls.append(i))
    monkeypatch.setattr(ltd, "stack", lambda *a, **k: calls.append("stack"))
    x, y = next(iter(ltd.DataLoader(ours, batch_size=4)))
    assert calls == []
    assert x.node.op is not x.node.op.BUFFER          # still lazy: nothing computed yet
    np.testing.assert_array_equal(x.numpy(), DATA_X[:4])
    np.testing.assert_array_equal(y.numpy(), DATA_Y[:4])


def test_subset_of_tensor_dataset_gathers_mapped_indices():
    ours, theirs = tensor_datasets()
    indices = [6, 0, 3, 3, -1]
    assert_same_batches(ltd.DataLoader(ltd.Subset(ltd.Subset(ours, indices), [4, 1, 2]), batch_size=2),
                        tud.DataLoader(tud.Subset(tud.Subset(theirs, indices), [4, 1, 2]), batch_size=2))


def test_user_collate_fn_sees_samples():
    ours, theirs = tensor_datasets()
    collate = lambda samples: [len(samples), [s[1].item() for s in samples]]   # noqa: E731
    assert_same_batches(ltd.DataLoader(ours, batch_size=3, collate_fn=collate),
                        tud.DataLoader(theirs, batch_size=3, collate_fn=collate))


def test_sampler_out_of_range_index_raises_index_error():
    ours, _ = tensor_datasets()
    with pytest.raises(IndexError, match="out of range"):
        list(ltd.DataLoader(ours, batch_size=2, sampler=[0, 7]))


def test_tensor_dataset_getitem_and_errors():
    ours, theirs = tensor_datasets()
    assert len(ours) == len(theirs) == 7
    assert to_plain(ours[2]) == to_plain(theirs[2])
    assert to_plain(ours[1:3]) == to_plain(theirs[1:3])
    with pytest.raises(ValueError, match=r"size mismatch between tensors.*\[3, 4\]"):
        ltd.TensorDataset(lt.ones(3, 2), lt.ones(4))
    with pytest.raises(ValueError, match="at least one tensor"):
        ltd.TensorDataset()


# ---------------------------------------------------------------- samplers and shuffling

def epoch_orders(loader, epochs=3):
    return [[int(v) for batch in loader for v in batch[1].tolist()] for _ in range(epochs)]


@pytest.mark.parametrize("generator", [None, 123, "numpy"])
def test_shuffle_is_a_permutation_reproducible_and_new_each_epoch(generator):
    ours, _ = tensor_datasets()

    def run():
        lt.manual_seed(5)
        gen = np.random.default_rng(9) if generator == "numpy" else generator
        return epoch_orders(ltd.DataLoader(ours, batch_size=3, shuffle=True, generator=gen), epochs=4)

    first, second = run(), run()
    assert first == second                                    # same seed → same orders
    for order in first:
        assert sorted(order) == sorted(DATA_Y.tolist())      # a permutation of the dataset
    assert len({tuple(o) for o in first}) > 1                 # a new order each epoch
    assert first[0] != sorted(first[0])


def test_manual_seed_changes_default_shuffle():
    ours, _ = tensor_datasets()
    orders = []
    for seed in range(4):
        lt.manual_seed(seed)
        orders.append(tuple(epoch_orders(ltd.DataLoader(ours, batch_size=7, shuffle=True), epochs=1)[0]))
    assert len(set(orders)) > 1


@pytest.mark.parametrize("num_samples", [None, 3, 7, 16])
@pytest.mark.parametrize("replacement", [False, True])
def test_random_sampler_counts(replacement, num_samples):
    sampler = ltd.RandomSampler(range(7), replacement=replacement, num_samples=num_samples, generator=0)
    ref = tud.RandomSampler(range(7), replacement=replacement, num_samples=num_samples)
    drawn = list(sampler)
    assert len(drawn) == len(sampler) == len(ref) == len(list(ref))
    assert all(0 <= i < 7 for i in drawn)
    if not replacement:      # each full pass is a permutation, the tail has no repeats
        full = len(drawn) // 7 * 7
        for start in range(0, full, 7):
            assert sorted(drawn[start:start + 7]) == list(range(7))
        assert len(set(drawn[full:])) == len(drawn[full:])


SAMPLER_ERRORS = [
    ("num_samples_zero", lambda m: m.RandomSampler(range(3), num_samples=0), ValueError, "num_samples"),
    ("replacement_int", lambda m: m.RandomSampler(range(3), replacement=1), TypeError, "replacement"),
    ("batch_size_zero", lambda m: m.BatchSampler(range(3), 0, False), ValueError, "batch_size"),
    ("batch_size_bool", lambda m: m.BatchSampler(range(3), True, False), ValueError, "batch_size"),
    ("drop_last_int", lambda m: m.BatchSampler(range(3), 2, 1), ValueError, "drop_last"),
    ("sampler_and_shuffle", lambda m: m.DataLoader(range(3), sampler=[0], shuffle=True), ValueError,
     "mutually exclusive with shuffle"),
    ("batch_sampler_and_batch_size", lambda m: m.DataLoader(range(3), batch_sampler=[[0]], batch_size=2),
     ValueError, "batch_sampler option is mutually exclusive"),
    ("batch_sampler_and_drop_last", lambda m: m.DataLoader(range(3), batch_sampler=[[0]], drop_last=True),
     ValueError, "batch_sampler option is mutually exclusive"),
    ("no_batch_and_drop_last", lambda m: m.DataLoader(range(3), batch_size=None, drop_last=True), ValueError,
     "mutually exclusive with drop_last"),
    ("negative_workers", lambda m: m.DataLoader(range(3), num_workers=-1), ValueError, "num_workers"),
    ("iterable_shuffle", lambda m: m.DataLoader(Stream(m, 3), shuffle=True), ValueError,
     "expected unspecified shuffle option"),
    ("iterable_sampler", lambda m: m.DataLoader(Stream(m, 3), sampler=[0]), ValueError,
     "expected unspecified sampler option"),
    ("split_bad_sum", lambda m: m.random_split(range(5), [2, 2]), ValueError,
     "Sum of input lengths does not equal"),
]


@pytest.mark.parametrize("name,make,exc,match", SAMPLER_ERRORS, ids=[c[0] for c in SAMPLER_ERRORS])
def test_argument_errors_like_torch(name, make, exc, match):
    with pytest.raises(exc, match=match):
        make(tud)
    with pytest.raises(exc, match=f"(?i){match}"):
        make(ltd)


def test_bad_generator_type():
    with pytest.raises(TypeError, match="generator must be an int seed or a numpy.random.Generator"):
        ltd.RandomSampler(range(3), generator="seed")


@pytest.mark.parametrize("n,bs,drop", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False),
                                       (2, 5, True), (0, 2, False)])
def test_batch_sampler_matches_torch(n, bs, drop):
    ours = ltd.BatchSampler(ltd.SequentialSampler(range(n)), bs, drop)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


def test_batch_sampler_argument_to_loader():
    ours, theirs = tensor_datasets()
    batches = [[6, 1], [0], [2, 3, 4]]
    assert_same_batches(ltd.DataLoader(ours, batch_sampler=batches),
                        tud.DataLoader(theirs, batch_sampler=batches))
    assert len(ltd.DataLoader(ours, batch_sampler=batches)) == 3


def test_subset_random_sampler_permutes_given_indices():
    sampler = ltd.SubsetRandomSampler([5, 9, 11, 2], generator=3)
    epochs = [list(sampler) for _ in range(4)]
    assert all(sorted(e) == [2, 5, 9, 11] for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1


# ---------------------------------------------------------------- datasets

@pytest.mark.parametrize("lengths", [[3, 4], [0, 7], [0.5, 0.5], [0.3, 0.3, 0.4], [1.0], [2, 2, 3]], ids=str)
def test_random_split_sizes_match_torch_and_partition(lengths):
    ours = ltd.random_split(range(7), lengths, generator=42)
    theirs = tud.random_split(range(7), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    members = [ours[k][i] for k in range(len(ours)) for i in range(len(ours[k]))]
    assert sorted(members) == list(range(7))
    again = ltd.random_split(range(7), lengths, generator=42)
    assert [s.indices for s in ours] == [s.indices for s in again]


def test_random_split_default_generator_follows_manual_seed():
    lt.manual_seed(1)
    a = [s.indices for s in ltd.random_split(range(20), [10, 10])]
    lt.manual_seed(1)
    b = [s.indices for s in ltd.random_split(range(20), [10, 10])]
    assert a == b


class Squares(ltd.Dataset):
    def __init__(self, n, offset=0):
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return (i + self.offset) ** 2


class TorchSquares(tud.Dataset):
    def __init__(self, n, offset=0):
        self.inner = Squares(n, offset)

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


def test_concat_dataset_matches_torch():
    ours = ltd.ConcatDataset([Squares(3), Squares(0), Squares(4, 10)])
    theirs = tud.ConcatDataset([TorchSquares(3), TorchSquares(0), TorchSquares(4, 10)])
    assert len(ours) == len(theirs) == 7
    assert [ours[i] for i in range(-7, 7)] == [theirs[i] for i in range(-7, 7)]
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    assert_same_batches(ltd.DataLoader(ours, batch_size=3), tud.DataLoader(theirs, batch_size=3))
    assert [(Squares(2) + Squares(1, 5))[i] for i in range(3)] == [0, 1, 25]
    with pytest.raises(ValueError, match="should not be an empty iterable"):
        ltd.ConcatDataset([])


class Stream(object):
    """An IterableDataset of n ints, built for either library (m is the module)."""

    def __new__(cls, m, n, with_len=True):
        base = m.IterableDataset

        class _Stream(base):
            def __iter__(self):
                return iter(range(n))

        if with_len:
            _Stream.__len__ = lambda self: n
        return _Stream()


@pytest.mark.parametrize("kwargs", [dict(), dict(batch_size=3), dict(batch_size=3, drop_last=True),
                                    dict(batch_size=None), dict(batch_size=8)], ids=str)
def test_iterable_dataset_matches_torch(kwargs):
    ours, theirs = ltd.DataLoader(Stream(ltd, 7), **kwargs), tud.DataLoader(Stream(tud, 7), **kwargs)
    assert len(ours) == len(theirs)
    assert_same_batches(ours, theirs)


def test_iterable_dataset_without_len():
    loader = ltd.DataLoader(Stream(ltd, 5, with_len=False), batch_size=2)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4]]
    with pytest.raises(TypeError):
        len(loader)


def test_chain_dataset():
    chained = Stream(ltd, 2) + Stream(ltd, 3)
    assert list(chained) == [0, 1, 0, 1, 2]
    assert len(chained) == 5


def test_plain_sequence_dataset_and_no_batching():
    assert_same_batches(ltd.DataLoader([1.5, 2.5, 3.5], batch_size=2),
                        tud.DataLoader([1.5, 2.5, 3.5], batch_size=2))
    assert_same_batches(ltd.DataLoader([np.ones(2), np.zeros(2)], batch_size=None),
                        tud.DataLoader([np.ones(2), np.zeros(2)], batch_size=None))
    assert math.isclose(len(ltd.DataLoader(range(10), batch_size=4)), 3)


def test_training_loop_over_loader_uses_compiler():
    """One epoch of least squares on loader batches: gradients flow through the gathered batch."""
    lt.manual_seed(0)
    x = lt.randn(16, 3)
    w_true = lt.tensor([[1.0], [-2.0], [0.5]])
    ds = ltd.TensorDataset(x, x @ w_true)
    w = lt.zeros(3, 1, requires_grad=True)
    for xb, yb in ltd.DataLoader(ds, batch_size=4, shuffle=True, generator=0):
        loss = ((xb @ w - yb) ** 2).mean()
        loss.backward()
        w = (w - 0.1 * w.grad).detach().realize().requires_grad_()
    xt, wt = torch.from_numpy(x.numpy()), torch.zeros(3, 1, requires_grad=True)
    yt = xt @ torch.tensor([[1.0], [-2.0], [0.5]])
    for idx in [list(b) for b in ltd.BatchSampler(ltd.RandomSampler(range(16), generator=0), 4, False)]:
        loss = ((xt[idx] @ wt - yt[idx]) ** 2).mean()
        loss.backward()
        wt = (wt - 0.1 * wt.grad).detach().requires_grad_()
    np.testing.assert_allclose(w.numpy(), wt.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("replacement", [True, False])
def test_weighted_random_sampler(replacement):
    weights = [0.0, 1.0, 3.0, 0.0, 2.0]
    sampler = ltd.WeightedRandomSampler(weights, 3 if not replacement else 600, replacement, generator=1)
    ref = tud.WeightedRandomSampler(weights, 3 if not replacement else 600, replacement)
    drawn = list(sampler)
    assert len(drawn) == len(sampler) == len(list(ref))
    assert set(drawn) <= {1, 2, 4}                      # zero weights are never drawn
    if replacement:      # frequencies near 1/6, 3/6, 2/6
        counts = np.bincount(drawn, minlength=5) / len(drawn)
        np.testing.assert_allclose(counts[[1, 2, 4]], [1 / 6, 3 / 6, 2 / 6], atol=0.06)
    else:
        assert sorted(drawn) == [1, 2, 4]
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        ltd.WeightedRandomSampler([[1.0]], 1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        ltd.WeightedRandomSampler(weights, 0)
