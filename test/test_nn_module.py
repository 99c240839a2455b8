"""nn.Module semantics against torch.nn.Module: registration order, containers, modes, apply,
zero_grad, repr, shared parameters, state_dict loading (strict errors, size mismatch), hooks."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn as nn

torch = pytest.importorskip("torch")


def build(lib):
    """The same small model built from lt.nn or torch.nn."""

    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.proj = lib.Linear(4, 6)
            self.act = lib.GELU()
            self.heads = lib.ModuleList([lib.Linear(6, 2), lib.Linear(6, 2, bias=False)])
            self.table = lib.ModuleDict({"emb": lib.Embedding(5, 4), "drop": lib.Dropout(0.1)})
            self.scale = lib.Parameter(lib.init.ones_(torch.empty(2)) if lib is torch.nn else lt.ones(2))

        def forward(self, x):
            h = self.act(self.proj(x))
            return (self.heads[0](h) + self.heads[1](h)) * self.scale

    return lib.Sequential(OrderedDict([("block", Block()), ("out", lib.Linear(2, 3)), ("relu", lib.ReLU())]))


@pytest.fixture
def models():
    return build(nn), build(torch.nn)


def test_named_parameters_and_state_dict_order_match_torch(models):
    ours, theirs = models
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    for (_, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert tuple(p.shape) == tuple(tp.shape)


def test_repr_matches_torch(models):
    ours, theirs = models
    assert repr(ours) == repr(theirs)


def test_forward_after_loading_torch_weights(models):
    ours, theirs = models
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        ours(lt.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    # and back: torch takes our values
    fresh = build(torch.nn)
    fresh.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(
        fresh(torch.tensor(x)).detach().numpy(), ours(lt.tensor(x)).numpy(), rtol=1e-5, atol=1e-6
    )


def test_train_eval_propagate(models):
    ours, _ = models
    assert all(m.training for m in ours.modules())
    ours.eval()
    assert not any(m.training for m in ours.modules())
    ours.train()
    assert all(m.training for m in ours.modules())
    ours.block.train(False)
    assert ours.training and not ours.block.table["drop"].training
    with pytest.raises(ValueError, match="boolean"):
        ours.train("yes")


def test_apply_visits_children_first_like_torch(models):
    ours, theirs = models
    seen, seen_torch = [], []
    ours.apply(lambda m: seen.append(type(m).__name__))
    theirs.apply(lambda m: seen_torch.append(type(m).__name__))
    assert seen == seen_torch


def test_zero_grad(models):
    ours, _ = models
    x = lt.ones(2, 4)
    ours(x).sum().backward()
    assert all(p.grad is not None for n, p in ours.named_parameters() if "emb" not in n)
    ours.zero_grad(set_to_none=False)
    grads = [p.grad for n, p in ours.named_parameters() if "emb" not in n]
    assert all(np.all(g.numpy() == 0) for g in grads)
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_shared_parameters_are_counted_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    tshared = torch.nn.Linear(3, 3)
    tmodel = torch.nn.Sequential(tshared, torch.nn.ReLU(), tshared)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in tmodel.named_parameters()]
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == list(tmodel.state_dict())
    assert len(list(model.modules())) == len(list(tmodel.modules()))


def test_parameter_gradients_flow_through_shared_use():
    shared = nn.Linear(2, 2, bias=False)
    model = nn.Sequential(shared, shared)
    tshared = torch.nn.Linear(2, 2, bias=False)
    tmodel = torch.nn.Sequential(tshared, tshared)
    model.load_state_dict(tmodel.state_dict())
    x = np.array([[1.0, -2.0]], dtype=np.float32)
    model(lt.tensor(x)).sum().backward()
    tmodel(torch.tensor(x)).sum().backward()
    np.testing.assert_allclose(shared.weight.grad.numpy(), tshared.weight.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("index", [0, 1, -1, -3, slice(1, None), slice(None, None, 2)])
def test_sequential_indexing_like_torch(index):
    layers = [(nn.ReLU(), torch.nn.ReLU()), (nn.Tanh(), torch.nn.Tanh()), (nn.Sigmoid(), torch.nn.Sigmoid())]
    ours = nn.Sequential(*[a for a, _ in layers])
    theirs = torch.nn.Sequential(*[b for _, b in layers])
    assert repr(ours[index]) == repr(theirs[index])
    assert len(ours) == len(theirs)


def test_container_mutation_like_torch():
    ours, theirs = nn.Sequential(nn.ReLU(), nn.Tanh()), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Tanh())
    for seq, lib in ((ours, nn), (theirs, torch.nn)):
        seq.append(lib.Sigmoid())
        seq.insert(1, lib.ELU())
        seq.insert(-1, lib.SELU())
        del seq[0]
        seq[0] = lib.GELU()
    assert repr(ours) == repr(theirs)
    mlist, tlist = nn.ModuleList([nn.ReLU()]), torch.nn.ModuleList([torch.nn.ReLU()])
    for lst, lib in ((mlist, nn), (tlist, torch.nn)):
        lst.extend([lib.Tanh(), lib.Sigmoid()])
        lst.insert(0, lib.ELU())
        del lst[1]
        lst += [lib.SiLU()]
    assert repr(mlist) == repr(tlist)
    folded = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU()])
    assert repr(folded) == repr(
        torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.ReLU()])
    )
    assert [type(m).__name__ for m in mlist] == [type(m).__name__ for m in tlist]
    with pytest.raises(IndexError, match="out of range"):
        mlist[10]
    mdict = nn.ModuleDict({"a": nn.ReLU()})
    mdict.update({"b": nn.Tanh()})
    assert list(mdict.keys()) == ["a", "b"] and "b" in mdict and len(mdict) == 2
    assert isinstance(mdict.pop("a"), nn.ReLU) and list(mdict) == ["b"]


def test_load_state_dict_strict_errors_name_the_keys():
    layer = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"'):
        layer.load_state_dict({"weight": torch.zeros(2, 3)})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        layer.load_state_dict({"weight": torch.zeros(2, 3), "bias": torch.zeros(2), "extra": torch.zeros(1)})
    result = layer.load_state_dict({"weight": torch.ones(2, 3), "extra": torch.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(layer.weight.numpy(), np.ones((2, 3)))


def test_load_state_dict_size_mismatch_raises_even_when_not_strict():
    layer = nn.Linear(3, 2)
    before = layer.weight.numpy().copy()
    message = (
        r"size mismatch for weight: copying a param with shape torch.Size\(\[4, 3\]\) from checkpoint, "
        r"the shape in current model is torch.Size\(\[2, 3\]\)"
    )
    with pytest.raises(RuntimeError, match=message):
        layer.load_state_dict({"weight": torch.zeros(4, 3), "bias": torch.zeros(2)})
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        layer.load_state_dict({"weight": torch.zeros(4, 3)}, strict=False)
    np.testing.assert_array_equal(layer.weight.numpy(), before)  # nothing was half-loaded


def test_loading_our_own_state_dict_keeps_parameters_separate():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    (a(lt.ones(1, 2)).sum() + 2 * b(lt.ones(1, 2)).sum()).backward()
    np.testing.assert_array_equal(a.weight.grad.numpy(), np.ones((2, 2)))
    np.testing.assert_array_equal(b.weight.grad.numpy(), 2 * np.ones((2, 2)))


def test_buffers_in_state_dict_unless_non_persistent():
    module = nn.Module()
    module.register_buffer("kept", lt.zeros(2))
    module.register_buffer("scratch", lt.ones(2), persistent=False)
    module.weight = nn.Parameter(lt.ones(3))
    tmodule = torch.nn.Module()
    tmodule.register_buffer("kept", torch.zeros(2))
    tmodule.register_buffer("scratch", torch.ones(2), persistent=False)
    tmodule.weight = torch.nn.Parameter(torch.ones(3))
    assert list(module.state_dict()) == list(tmodule.state_dict())
    assert [n for n, _ in module.named_buffers()] == [n for n, _ in tmodule.named_buffers()]
    assert not module.kept.requires_grad


def test_assigning_a_plain_tensor_to_a_parameter_name_is_an_error():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        layer.weight = lt.ones(2, 2)
    layer.weight = nn.Parameter(lt.ones(2, 2))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    seq = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="child module"):
        setattr(seq, "0", 3)


def test_module_without_super_init_says_so():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_forward_hooks():
    layer = nn.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, args: calls.append("pre"))
    post = layer.register_forward_hook(lambda m, args, out: out * 0)
    out = layer(lt.ones(1, 2))
    assert calls == ["pre"] and np.all(out.numpy() == 0)
    pre.remove()
    post.remove()
    assert np.any(layer(lt.ones(1, 2)).numpy() != 0) and calls == ["pre"]


def test_get_submodule_and_parameter(models):
    ours, theirs = models
    assert type(ours.get_submodule("block.heads.1")).__name__ == "Linear"
    assert tuple(ours.get_parameter("block.heads.0.weight").shape) == tuple(
        theirs.get_parameter("block.heads.0.weight").shape
    )
    with pytest.raises(AttributeError):
        ours.get_submodule("block.nothing")


def test_requires_grad_and_to_double(models):
    ours, _ = models
    ours.requires_grad_(False)
    assert not any(p.requires_grad for p in ours.parameters())
    ours.requires_grad_(True)
    ours.double()
    assert all(p.dtype == lt.float64 for p in ours.parameters())
    assert all(p.requires_grad for p in ours.parameters())
    assert ours(lt.ones(1, 4, dtype="float64")).dtype == lt.float64
