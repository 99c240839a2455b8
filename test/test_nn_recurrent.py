"""RNN, LSTM, GRU and their cells against torch.nn: forward, final states and gradients (same upstream
gradient) over a table of configurations, with torch's weights loaded into ours and ours into torch."""

from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn as nn

torch = pytest.importorskip("torch")

INPUT, HIDDEN, STEPS, BATCH = 3, 4, 2, 2


def close_all(pairs, rtol=1e-4, atol=1e-5):
    """Compare (ours, torch's) pairs; ours are computed in one realize (shared work once)."""
    lt.realize(*[got for got, _ in pairs])
    for got, want in pairs:
        w = want.detach().numpy()
        g = got.numpy()
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return lt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def upstream(shape, seed):
    return np.random.default_rng(seed).standard_normal(tuple(shape)).astype(np.float32)


def backward_both(outs, touts):
    """Backpropagate the same random upstream gradients through every output (before realizing ours)."""
    ours = sum(
        ((o * lt.tensor(upstream(t.shape, i))).sum() for i, (o, t) in enumerate(zip(outs, touts))),
        lt.tensor(0.0),
    )
    theirs = sum((t * torch.tensor(upstream(t.shape, i))).sum() for i, t in enumerate(touts))
    ours.backward()
    theirs.backward()


CASES = [
    # (class, constructor kwargs, initial state given, unbatched)
    ("LSTM", {}, False, False),
    ("LSTM", {"bidirectional": True, "batch_first": True}, True, False),
    ("LSTM", {"bias": False, "proj_size": 2}, True, False),
    ("GRU", {"num_layers": 2}, False, False),
    ("GRU", {"batch_first": True, "bias": False}, True, True),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2}, True, False),
    ("RNN", {"bidirectional": True, "batch_first": True}, False, True),
]


@pytest.mark.parametrize("name,kwargs,with_state,unbatched", CASES, ids=str)
def test_recurrent_layer_matches_torch(name, kwargs, with_state, unbatched):
    ours, theirs = (
        getattr(nn, name)(INPUT, HIDDEN, **kwargs),
        getattr(torch.nn, name)(INPUT, HIDDEN, **kwargs),
    )
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())
    batch_first = kwargs.get("batch_first", False)
    if unbatched:
        shape = (STEPS, INPUT)
    else:
        shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x, tx = pair(shape, 0)
    states, tstates = [], []
    if with_state:
        layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
        lead = (layers,) if unbatched else (layers, BATCH)
        h, th = pair(lead + (kwargs.get("proj_size") or HIDDEN,), 1)
        states, tstates = [h], [th]
        if name == "LSTM":
            c, tc = pair(lead + (HIDDEN,), 2)
            states, tstates = [h, c], [th, tc]
    hx = None
    thx = None
    if states:
        hx = tuple(states) if name == "LSTM" else states[0]
        thx = tuple(tstates) if name == "LSTM" else tstates[0]
    out, final = ours(x, hx)
    tout, tfinal = theirs(tx, thx)
    finals = list(final) if name == "LSTM" else [final]
    tfinals = list(tfinal) if name == "LSTM" else [tfinal]
    backward_both([out] + finals, [tout] + tfinals)
    pairs = [(out, tout)] + list(zip(finals, tfinals)) + [(x.grad, tx.grad)]
    pairs += [(s.grad, ts.grad) for s, ts in zip(states, tstates)]
    pairs += [(p.grad, tp.grad) for p, tp in zip(ours.parameters(), theirs.parameters())]
    close_all(pairs)


@pytest.mark.parametrize("unbatched", [False, True])
def test_lstm_ours_into_torch(unbatched):
    ours = nn.LSTM(INPUT, HIDDEN, num_layers=2)
    theirs = torch.nn.LSTM(INPUT, HIDDEN, num_layers=2)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    shape = (STEPS, INPUT) if unbatched else (STEPS, BATCH, INPUT)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    lead = (2,) if unbatched else (2, BATCH)
    h0 = np.random.default_rng(1).standard_normal(lead + (HIDDEN,)).astype(np.float32)
    c0 = np.random.default_rng(2).standard_normal(lead + (HIDDEN,)).astype(np.float32)
    out, (h, c) = ours(lt.tensor(x), (lt.tensor(h0), lt.tensor(c0)))
    with torch.no_grad():
        tout, (th, tc) = theirs(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    close_all([(out, tout), (h, th), (c, tc)])


def test_dropout_between_layers_only_in_training():
    # p=1 zeroes the first layer's output: the second layer then sees zeros, exactly as in torch
    ours, theirs = (
        nn.GRU(INPUT, HIDDEN, num_layers=2, dropout=1.0),
        torch.nn.GRU(INPUT, HIDDEN, num_layers=2, dropout=1.0),
    )
    ours.load_state_dict(theirs.state_dict())
    x, tx = pair((STEPS, BATCH, INPUT), 0)
    out, _ = ours(x)
    with torch.no_grad():
        tout, _ = theirs(tx)
    close_all([(out, tout)])
    ours.eval()
    theirs.eval()
    out, _ = ours(x)
    with torch.no_grad():
        tout, _ = theirs(tx)
    close_all([(out, tout)])


def test_recurrent_init_bounds():
    layer = nn.LSTM(5, 16, num_layers=2, bidirectional=True)
    bound = 1 / np.sqrt(16)
    for name, p in layer.named_parameters():
        v = p.numpy()
        assert np.abs(v).max() <= bound, name
    assert len(layer.all_weights) == 4 and len(layer.all_weights[0]) == 4


def test_recurrent_errors():
    layer = nn.LSTM(INPUT, HIDDEN)
    with pytest.raises(RuntimeError, match="input_size. Expected 3, got 5"):
        layer(lt.ones(STEPS, BATCH, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 2, 4\)"):
        layer(lt.ones(STEPS, BATCH, INPUT), (lt.ones(1, 3, HIDDEN), lt.ones(1, 3, HIDDEN)))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D"):
        layer(lt.ones(INPUT))
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(INPUT, HIDDEN, nonlinearity="gelu")
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.GRU(INPUT, HIDDEN, proj_size=2)


CELL_CASES = [
    ("LSTMCell", {}, True, False),
    ("LSTMCell", {"bias": False}, False, True),
    ("GRUCell", {}, True, False),
    ("GRUCell", {}, False, True),
    ("RNNCell", {"nonlinearity": "relu"}, True, False),
    ("RNNCell", {"bias": False}, True, True),
]


@pytest.mark.parametrize("name,kwargs,with_state,unbatched", CELL_CASES, ids=str)
def test_cell_matches_torch(name, kwargs, with_state, unbatched):
    ours, theirs = (
        getattr(nn, name)(INPUT, HIDDEN, **kwargs),
        getattr(torch.nn, name)(INPUT, HIDDEN, **kwargs),
    )
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict())
    lead = () if unbatched else (BATCH,)
    x, tx = pair(lead + (INPUT,), 0)
    states, tstates = [], []
    if with_state:
        h, th = pair(lead + (HIDDEN,), 1)
        states, tstates = [h], [th]
        if name == "LSTMCell":
            c, tc = pair(lead + (HIDDEN,), 2)
            states, tstates = [h, c], [th, tc]
    hx = (tuple(states) if name == "LSTMCell" else states[0]) if states else None
    thx = (tuple(tstates) if name == "LSTMCell" else tstates[0]) if tstates else None
    result, tresult = ours(x, hx), theirs(tx, thx)
    outs = list(result) if name == "LSTMCell" else [result]
    touts = list(tresult) if name == "LSTMCell" else [tresult]
    backward_both(outs, touts)
    pairs = list(zip(outs, touts)) + [(x.grad, tx.grad)]
    pairs += [(s.grad, ts.grad) for s, ts in zip(states, tstates)]
    pairs += [(p.grad, tp.grad) for p, tp in zip(ours.parameters(), theirs.parameters())]
    close_all(pairs)


def test_cell_state_dict_round_trip():
    ours, theirs = nn.GRUCell(INPUT, HIDDEN), torch.nn.GRUCell(INPUT, HIDDEN)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((BATCH, INPUT)).astype(np.float32)
    with torch.no_grad():
        close_all([(ours(lt.tensor(x)), theirs(torch.tensor(x)))])
