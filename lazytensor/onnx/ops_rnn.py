"""Recurrent ONNX ops: RNN, GRU and LSTM (forward, reverse, bidirectional; sequence_lens; peepholes).

Each time step is traced into the lazy graph (the loop is unrolled), gates computed with one matmul
per weight matrix; padded steps past a batch entry's sequence length keep its state and output zeros.
"""
from __future__ import annotations

from typing import Callable

from lazytensor import dtypes
from lazytensor.creation import zeros
from lazytensor.functions import stack
from lazytensor.onnx.ops import OpContext, Value, register
from lazytensor.tensor import Tensor

Activation = Callable[[Tensor], Tensor]


def _activation(name: str, alpha: float | None, beta: float | None) -> Activation:
    lowered = name.lower()
    table: dict[str, Activation] = {
        "relu": Tensor.relu, "tanh": Tensor.tanh, "sigmoid": Tensor.sigmoid, "softsign": Tensor.softsign,
        "softplus": lambda x: x.relu() + (-x.abs()).exp().log1p(),
        "affine": lambda x: x * (1.0 if alpha is None else alpha) + (0.0 if beta is None else beta),
        "leakyrelu": lambda x: (x < 0)._where(x * (0.01 if alpha is None else alpha), x),
        "thresholdedrelu": lambda x: (x > (1.0 if alpha is None else alpha))._where(x, 0.0),
        "scaledtanh": lambda x: (x * (1.0 if beta is None else beta)).tanh() * (1.0 if alpha is None else alpha),
        "hardsigmoid": lambda x: (x * (0.2 if alpha is None else alpha) + (0.5 if beta is None else beta)
                                  ).clamp(0.0, 1.0),
        "elu": lambda x: (x < 0)._where((x.exp() - 1) * (1.0 if alpha is None else alpha), x),
    }
    if lowered not in table:
        raise ValueError(f"unknown RNN activation {name!r}")
    fn = table[lowered]
    return lambda x: fn(x).cast(x.dtype)


def _activations(ctx: OpContext, defaults: list[str], n_dirs: int) -> list[list[Activation]]:
    names = ctx.attr("activations") or defaults * n_dirs
    alphas = ctx.attr("activation_alpha") or []
    betas = ctx.attr("activation_beta") or []
    fns = [_activation(n, alphas[i] if i < len(alphas) else None, betas[i] if i < len(betas) else None)
           for i, n in enumerate(names)]
    per = len(defaults)
    if len(fns) == per and n_dirs == 2:
        fns = fns * 2
    return [fns[d * per:(d + 1) * per] for d in range(n_dirs)]


class _Setup:
    """Inputs of an RNN-family node normalized to (seq, batch, *) layout, per direction."""

    def __init__(self, ctx: OpContext, args: list[Value], gates: int) -> None:
        args = args + [None] * (8 - len(args))
        x, self.w, self.r, b, lens, h0 = args[:6]
        self.extra = args[6:]
        self.layout = ctx.attr("layout", 0)
        if self.layout:
            x = x.transpose(0, 1)
            h0 = h0.transpose(0, 1) if h0 is not None else None
        self.x = x
        self.seq, self.batch = x.shape[0], x.shape[1]
        self.hidden = ctx.attr("hidden_size") or self.r.shape[-1]
        direction = ctx.attr("direction", "forward")
        self.dirs = {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]
        hg = gates * self.hidden
        if b is None:
            b = zeros((len(self.dirs), 2 * hg), dtype=x.dtype, device=x.device)
        self.wb, self.rb = b.narrow(1, 0, hg), b.narrow(1, hg, hg)
        self.h0 = h0 if h0 is not None else zeros((len(self.dirs), self.batch, self.hidden), dtype=x.dtype,
                                                  device=x.device)
        self.clip = ctx.attr("clip")
        self.lens = lens
        self.ctx = ctx

    def clipped(self, t: Tensor) -> Tensor:
        return t.clamp(-self.clip, self.clip) if self.clip is not None else t

    def active(self, t: int) -> Tensor | None:
        """(batch, 1) bool: step t is within each batch entry's sequence length."""
        if self.lens is None:
            return None
        return (self.lens.cast(dtypes.int64) > t).reshape((self.batch, 1))

    def steps(self, reverse: bool) -> list[int]:
        return list(range(self.seq - 1, -1, -1)) if reverse else list(range(self.seq))

    def finish(self, ys: list[list[Tensor]], states: list[list[Tensor]]) -> tuple[Tensor, ...]:
        """Per-direction step outputs and final states → (Y, Y_h[, Y_c]) in the node's layout."""
        y = stack([stack(per_dir, 0) for per_dir in ys], 1)             # (seq, dirs, batch, hidden)
        finals = [stack([s[i] for s in states], 0) for i in range(len(states[0]))]
        if self.layout:
            y = y.permute((2, 0, 1, 3))
            finals = [f.transpose(0, 1) for f in finals]
        return (y, *finals)


def _run(setup: _Setup, step: Callable[[int, Tensor, list[Tensor], int], list[Tensor]],
         init: Callable[[int], list[Tensor]]) -> tuple[Tensor, ...]:
    ys: list[list[Tensor]] = []
    finals: list[list[Tensor]] = []
    for d, reverse in enumerate(setup.dirs):
        state = init(d)
        outs: dict[int, Tensor] = {}
        steps = setup.steps(reverse)
        # with sequence_lens, steps past an entry's length keep its state, so a reversed pass
        # effectively starts at each entry's own last step
        for t in steps:
            new_state = step(d, setup.x[t], state, t)
            active = setup.active(t)
            if active is not None:
                new_state = [active._where(n, s).cast(s.dtype) for n, s in zip(new_state, state)]
                outs[t] = active._where(new_state[0], 0.0).cast(new_state[0].dtype)
            else:
                outs[t] = new_state[0]
            state = new_state
        ys.append([outs[t] for t in range(setup.seq)])
        finals.append(state)
    return setup.finish(ys, finals)


def _linear(x: Tensor, w: Tensor) -> Tensor:
    return x.matmul(w.transpose(0, 1))


@register("RNN")
def rnn(ctx: OpContext, args: list[Value]) -> Value:
    s = _Setup(ctx, args, 1)
    acts = _activations(ctx, ["Tanh"], len(s.dirs))

    def step(d: int, xt: Tensor, state: list[Tensor], t: int) -> list[Tensor]:
        pre = _linear(xt, s.w[d]) + _linear(state[0], s.r[d]) + s.wb[d] + s.rb[d]
        return [acts[d][0](s.clipped(pre))]
    return _run(s, step, lambda d: [s.h0[d]])


@register("GRU")
def gru(ctx: OpContext, args: list[Value]) -> Value:
    s = _Setup(ctx, args, 3)
    acts = _activations(ctx, ["Sigmoid", "Tanh"], len(s.dirs))
    hs = s.hidden
    before_reset = ctx.attr("linear_before_reset", 0)

    def step(d: int, xt: Tensor, state: list[Tensor], t: int) -> list[Tensor]:
        f, g = acts[d]
        h = state[0]
        w, r, wb, rb = s.w[d], s.r[d], s.wb[d], s.rb[d]
        gx = _linear(xt, w) + wb
        z = f(s.clipped(gx.narrow(1, 0, hs) + _linear(h, r.narrow(0, 0, hs)) + rb.narrow(0, 0, hs)))
        rr = f(s.clipped(gx.narrow(1, hs, hs) + _linear(h, r.narrow(0, hs, hs)) + rb.narrow(0, hs, hs)))
        rh, rbh = r.narrow(0, 2 * hs, hs), rb.narrow(0, 2 * hs, hs)
        if before_reset:
            cand = gx.narrow(1, 2 * hs, hs) + rr * (_linear(h, rh) + rbh)
        else:
            cand = gx.narrow(1, 2 * hs, hs) + _linear(rr * h, rh) + rbh
        hh = g(s.clipped(cand))
        return [((1 - z) * hh + z * h).cast(h.dtype)]
    return _run(s, step, lambda d: [s.h0[d]])[:2]


@register("LSTM")
def lstm(ctx: OpContext, args: list[Value]) -> Value:
    s = _Setup(ctx, args, 4)
    acts = _activations(ctx, ["Sigmoid", "Tanh", "Tanh"], len(s.dirs))
    hs = s.hidden
    c0, peep = s.extra[0], s.extra[1]
    if c0 is not None and s.layout:
        c0 = c0.transpose(0, 1)
    if c0 is None:
        c0 = zeros((len(s.dirs), s.batch, hs), dtype=s.x.dtype, device=s.x.device)
    couple = ctx.attr("input_forget", 0)

    def step(d: int, xt: Tensor, state: list[Tensor], t: int) -> list[Tensor]:
        f, g, h_act = acts[d]
        h, c = state
        gates = _linear(xt, s.w[d]) + _linear(h, s.r[d]) + s.wb[d] + s.rb[d]
        gi, go, gf, gc = (gates.narrow(1, k * hs, hs) for k in range(4))
        if peep is not None:
            pi, po, pf = (peep[d].narrow(0, k * hs, hs) for k in range(3))
            gi, gf = gi + pi * c, gf + pf * c
        else:
            po = None
        i = f(s.clipped(gi))
        fg = (1 - i) if couple else f(s.clipped(gf))
        cc = g(s.clipped(gc))
        c_new = fg * c + i * cc
        if po is not None:
            go = go + po * c_new
        o = f(s.clipped(go))
        return [(o * h_act(c_new)).cast(h.dtype), c_new.cast(c.dtype)]
    return _run(s, step, lambda d: [s.h0[d], c0[d]])

