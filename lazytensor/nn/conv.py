"""nn area: convolution (conv1d/2d/3d, conv_transpose1d/2d/3d) and the Conv*/ConvTranspose* layers.

Every convolution is a view plus one reduce: the zero-padded input is viewed as sliding windows
(`sliding_windows`: one WINDOW view per spatial dim, which the compiler turns into index math
o·stride + k·dilation, copying nothing), multiplied by the weight and summed over (in-channels,
kernel). The multiply and sum are one fused reduce kernel (a padded input is stored once first,
since every element is read kernel-size times); autograd differentiates the views for free.
A transposed convolution is the same thing on an input with stride-1 zeros inserted, with the
weight flipped and its channel axes swapped.

Two layouts of that one reduce (`_conv_layout` picks):
- direct: the windows of the NCHW input times the weight, output width on the vector lanes. Best
  on the CPU whenever the output width is a whole number of vectors (the tile then reads whole
  vectors of adjacent pixels and stores NCHW directly, no transposes), and with few input channels
  (an RGB stem), where the reduce is short and the output wide.
- channels-last: the input stored once as (N, *spatial, C), the weight packed into panels of 16
  output channels (N·HW positions × C_out is then a matmul whose right operand is the packed
  weight); output channels fill the vector lanes, output positions the register tile's rows, and
  (C_in, *kernel) is the reduce. The result is stored channels-last and transposed back to NCHW
  in a second kernel, where bias and activations fuse.

Gradients: a convolution defines its own (autograd.define_gradient) rather than letting autograd
differentiate the window views, which yields one shifted, padded reduce per kernel tap, summed —
an untiled kernel 10-30x slower than the forward. The input gradient is a transposed convolution of
the output gradient (so it runs in the layouts above); the weight gradient is the windows of the
input times the output gradient summed over batch and positions, read channels-last when the
forward is (input channels on the vector lanes, output channels on the tile rows).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Sequence

from lazytensor import dtypes
from lazytensor.autograd import GradMode, define_gradient, needs_grad
from lazytensor.graph import Node
from lazytensor.nn import init
from lazytensor.nn.module import Module, Parameter
from lazytensor.ops import Op
from lazytensor.tensor import Tensor
from lazytensor.tensor_linalg import direct_conv, packed_panel_width, vector_lanes_on

FUNCTIONS: list[str] = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d"]
MODULES: list[str] = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

IntOrTuple = int | Sequence[int]


# ---- shared helpers (pooling.py uses these too) ----

def ntuple(value: Any, n: int, name: str, op: str) -> tuple[int, ...]:
    """An int or a length-n sequence of ints → an n-tuple (torch's _single/_pair/_triple)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {tuple(value)}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _interleave(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    """(a0, b0, a1, b1, ...)."""
    out: list[int] = []
    for x, y in zip(a, b):
        out += [x, y]
    return tuple(out)


def _shrink_last(x: Tensor, bounds: Sequence[tuple[int, int]]) -> Tensor:
    """Shrink the trailing len(bounds) dims of x to [start, end) each, keeping the leading dims."""
    lead = [(0, s) for s in x.shape[:x.ndim - len(bounds)]]
    return x._shrink(lead + list(bounds))


def window_output_size(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Number of windows of `kernel` taps (spaced `dilation`) at `stride` that fit in `size`."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def sliding_windows(x: Tensor, kernel: Sequence[int], stride: Sequence[int],
                    dilation: Sequence[int]) -> Tensor:
    """View the last n dims of x as windows: (*lead, *in) → (*lead, *out, *kernel), no copies.

    out[..., o_0, ..., k_0, ...] = x[..., o_0·stride_0 + k_0·dilation_0, ...] with
    out_i = (in_i - dilation_i·(kernel_i - 1) - 1) // stride_i + 1 (no padding: pad x first)."""
    n = len(kernel)
    lead = tuple(x.shape[:x.ndim - n])
    sizes = tuple(x.shape[x.ndim - n:])
    outs = tuple(window_output_size(i, k, s, d) for i, k, s, d in zip(sizes, kernel, stride, dilation))
    if any(o <= 0 for o in outs):
        raise RuntimeError(f"sliding windows: kernel {tuple(kernel)} with dilation {tuple(dilation)} does "
                           f"not fit in input size {sizes}")
    # one WINDOW view per spatial dim: each turns its dim into the window count and appends the taps
    for j, (k, s, d) in enumerate(zip(kernel, stride, dilation)):
        x = x.unfold(len(lead) + j, k, s, d)
    return x


def _trailing_pad(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """(before, after) pairs for the last len(pairs) dims, first dim first → F.pad's flat list."""
    flat: list[int] = []
    for before, after in reversed(list(pairs)):
        flat += [before, after]
    return flat


def _check_dtypes(op: str, x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    if not x.dtype.is_float:
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype.name}; call .float() first")
    if weight.dtype != x.dtype:
        raise RuntimeError(f"{op}: input type ({x.dtype.name}) and weight type ({weight.dtype.name}) "
                           f"should be the same; cast one with .to(...)")
    if bias is not None and bias.dtype != x.dtype:
        raise RuntimeError(f"{op}: input type ({x.dtype.name}) and bias type ({bias.dtype.name}) "
                           f"should be the same")


def _batched(op: str, x: Tensor, n: int) -> tuple[Tensor, bool]:
    """Accept (N, C, *spatial) or unbatched (C, *spatial) input; returns (batched x, was unbatched)."""
    if x.ndim == n + 2:
        return x, False
    if x.ndim == n + 1:
        return x.unsqueeze(0), True
    raise RuntimeError(f"{op}: expected {n + 1}D (unbatched) or {n + 2}D (batched) input, but got input of "
                       f"size {list(x.shape)} ({x.ndim}D)")


def _same_padding(kernel: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int]]:
    """padding='same': total d·(k-1) per dim, the odd element going after (as torch does)."""
    pairs = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pairs.append((total // 2, total - total // 2))
    return pairs


def _conv_padding(op: str, padding: Any, n: int, kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int]) -> list[tuple[int, int]]:
    """padding (int, tuple, 'same' or 'valid') → (before, after) per spatial dim."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride={tuple(stride)})")
            return _same_padding(kernel, dilation)
        raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
    pads = ntuple(padding, n, "padding", op)
    if any(p < 0 for p in pads):
        raise RuntimeError(f"{op}: negative padding is not supported, got padding={pads}")
    return [(p, p) for p in pads]


def _check_kernel_fits(op: str, padded: tuple[int, ...], kernel: Sequence[int],
                       dilations: Sequence[int]) -> None:
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilations))
    if any(size < span for size, span in zip(padded, spans)):
        raise RuntimeError(f"{op}: calculated padded input size per channel {padded} is smaller than the "
                           f"(dilated) kernel size {spans}; the kernel can't be greater than the padded "
                           f"input")


CHANNELS_LAST_MIN_CIN = 8
"""Fewest input channels per group for the channels-last layout. Below it the reduce is too short
to pay for the two transposing copies, and the direct layout is faster (measured: N=8 3→32 3x3
64x64 runs ~1.6x faster direct; 8→32 and 16→32 run 1.4–1.6x faster channels-last)."""


def _panel(x: Tensor, c_out_group: int) -> int:
    """Output channels per packed weight panel, the vector axis of the register tile the codegen
    builds (as for the matmul's packed right operand); 0 when no panel width divides c_out_group."""
    return packed_panel_width(x.dtype, c_out_group, x.device)


_direct_only = False


@contextlib.contextmanager
def direct_layout() -> Iterator[None]:
    """Build every convolution in the direct layout inside this block: the ONNX exporter traces with it,
    since it recognizes a convolution by the direct layout's graph (window views times the weight)."""
    global _direct_only
    saved, _direct_only = _direct_only, True
    try:
        yield
    finally:
        _direct_only = saved


def _direct_rows_are_vectors(x: Tensor, weight: Tensor, strides: Sequence[int],
                             dilations: Sequence[int]) -> bool:
    """On the CPU, the direct layout's register tile takes whole vectors of adjacent output pixels
    (codegen/vectorize.py) when the last spatial dim has stride 1 and its output size is a multiple
    of a vector's lanes: no transposing copies then, and it beats channels-last (measured on
    AVX-512, 2 threads: N32 32→64 16² 1.82 vs 1.85 ms, N8 16→32 32² 0.56 vs 0.83; with 8-, 28- or
    56-wide images channels-last is 2-13x faster)."""
    lanes = vector_lanes_on(x.dtype, x.device)
    if not lanes or strides[-1] != 1:
        return False
    width = window_output_size(x.shape[-1], weight.shape[-1], strides[-1], dilations[-1])
    return width % lanes == 0


def _conv_layout(x: Tensor, weight: Tensor, groups: int, strides: Sequence[int] | None = None,
                 dilations: Sequence[int] | None = None) -> str:
    """Which layout computes conv(x, weight): 'direct' when its tile rows are whole vectors (see
    _direct_rows_are_vectors); else 'channels_last' when the output channels per group fill whole
    vector panels and there are enough input channels per group to pay for the transposes (see the
    module docstring), else 'direct' (always inside `direct_layout()`)."""
    ones = (1,) * (weight.ndim - 2)
    if _direct_only or _direct_rows_are_vectors(x, weight, strides or ones, dilations or ones):
        return "direct"
    c_out_group, c_in_group = weight.shape[0] // groups, weight.shape[1]
    panel = _panel(x, c_out_group)
    if not panel or c_in_group < CHANNELS_LAST_MIN_CIN:
        return "direct"
    return "channels_last"


def _conv_channels_last(x: Tensor, weight: Tensor, strides: Sequence[int], dilations: Sequence[int],
                        groups: int) -> Tensor:
    """Convolution of the padded input x (N, C_in, *in) with weight (C_out, C_in/G, *k) → (N, C_out, *out),
    computed channels-last: x is stored once as (N, *in, G, C_in/G) and the weight as panels
    (G, C_out/G/P, C_in/G, *k, P) of P output channels, so the reduce kernel reads P adjacent weights
    per step (the vector lanes) and broadcasts one input value per output position (the tile rows)."""
    n = x.ndim - 2
    batch = x.shape[0]
    c_out, c_in_group = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    panel = _panel(x, c_out // groups)
    panels = c_out // groups // panel
    # (N, C, *in) → (N, *in, G, C/G), stored: every element is read prod(kernel) times
    x = x.permute([0] + list(range(2, 2 + n)) + [1]).contiguous()
    x = x.reshape(tuple(x.shape[:1 + n]) + (groups, c_in_group))
    for j, (k, s, d) in enumerate(zip(kernel, strides, dilations)):
        x = x.unfold(1 + j, k, s, d)                                  # (N, *out, G, C/G, *k)
    outs = tuple(x.shape[1:1 + n])
    # weight (C_out, C/G, *k) → packed (G, panels, C/G·k, P) → view (G, panels, P, C/G, *k)
    w = weight.reshape(groups, panels, panel, c_in_group * math.prod(kernel))
    w = w.permute(0, 1, 3, 2).contiguous()
    w = w.reshape((groups, panels, c_in_group) + kernel + (panel,))
    w = w.permute([0, 1, 3 + n, 2] + list(range(3, 3 + n)))
    # (N, *out, G, 1, 1, C/G, *k) · (G, panels, P, C/G, *k), summed over (C/G, *k)
    win = x.unsqueeze(2 + n).unsqueeze(2 + n)
    out = (win * w).sum(tuple(range(4 + n, 5 + 2 * n)))              # (N, *out, G, panels, P)
    out = out.reshape((batch,) + outs + (c_out,)).contiguous()
    return out.permute([0, 1 + n] + list(range(1, 1 + n)))


def _conv_input_grad(grad: Tensor, weight: Tensor, sizes: tuple[int, ...], pads: Sequence[tuple[int, int]],
                     strides: Sequence[int], dilations: Sequence[int], groups: int) -> Tensor:
    """d(conv)/d(input) for output gradient grad (N, C_out, *out), input (N, C_in, *sizes) zero-padded by
    pads: the transposed convolution of grad with the same weight, cropped to the unpadded input (and
    extended over trailing elements no window reached). A convolution again: it runs in the fast layouts."""
    n = grad.ndim - 2
    kernel = tuple(weight.shape[2:])
    full = []
    for i, (before, after), o, s, d, k in zip(sizes, pads, grad.shape[2:], strides, dilations, kernel):
        unreached = i + before + after - ((o - 1) * s + d * (k - 1) + 1)
        full.append((d * (k - 1) - before, d * (k - 1) - after + unreached))
    return _transposed_conv(f"conv{n}d backward", grad, weight, None, strides, dilations, groups, full)


def _conv_weight_grad(grad: Tensor, x: Tensor, kernel: tuple[int, ...], strides: Sequence[int],
                      dilations: Sequence[int], groups: int) -> Tensor:
    """d(conv)/d(weight) for output gradient grad (N, C_out, *out) and padded input x (N, C_in, *in):
    the windows of x times grad, summed over the batch and the output positions → (C_out, C_in/G, *k)."""
    n = len(kernel)
    batch, c_out = grad.shape[0], grad.shape[1]
    outs = tuple(grad.shape[2:])
    c_in_group = x.shape[1] // groups
    if x.node.op is not Op.BUFFER:
        x = x.contiguous()   # every element is read prod(kernel) times (the forward stores the same copy)
    win = sliding_windows(x, kernel, strides, dilations)             # (N, C_in, *out, *k)
    # (N, G, 1, *out, C_in/G, *k) · (N, G, C_out/G, *out, 1, *1), summed over (N, *out)
    win = win.reshape((batch, groups, c_in_group) + outs + kernel)
    win = win.permute([0, 1] + list(range(3, 3 + n)) + [2] + list(range(3 + n, 3 + 2 * n))).unsqueeze(2)
    per_out = grad.reshape((batch, groups, c_out // groups) + outs + (1,) * (n + 1))
    out = (win * per_out).sum((0,) + tuple(range(3, 3 + n)))          # (G, C_out/G, C_in/G, *k)
    return out.reshape((c_out, c_in_group) + kernel)


def _conv_weight_grad_channels_last(grad: Tensor, x: Tensor, kernel: tuple[int, ...], strides: Sequence[int],
                                    dilations: Sequence[int], groups: int) -> Tensor:
    """d(conv)/d(weight) as `_conv_weight_grad`, reading the padded input channels-last (the copy that the
    channels-last forward stores): per (batch, position) step the kernel reads a vector of adjacent input
    channels and one gradient value per output channel (a matmul-like register tile, vectorized)."""
    n = len(kernel)
    batch, c_out = grad.shape[0], grad.shape[1]
    outs = tuple(grad.shape[2:])
    c_in_group = x.shape[1] // groups
    x = x.permute([0] + list(range(2, 2 + n)) + [1]).contiguous()   # (N, *in, C_in), as the forward
    x = x.reshape(tuple(x.shape[:1 + n]) + (groups, c_in_group))
    for j, (k, s, d) in enumerate(zip(kernel, strides, dilations)):
        x = x.unfold(1 + j, k, s, d)                                  # (N, *out, G, C/G, *k)
    # (N, *out, G, 1, *k, C/G) · (N, *out, G, C_out/G, *1, 1), summed over (N, *out)
    win = x.permute(list(range(2 + n)) + list(range(3 + n, 3 + 2 * n)) + [2 + n]).unsqueeze(2 + n)
    per_out = grad.reshape((batch, groups, c_out // groups) + outs)
    per_out = per_out.permute([0] + list(range(3, 3 + n)) + [1, 2]).reshape(
        (batch,) + outs + (groups, c_out // groups) + (1,) * (n + 1))
    # stored as summed (input channels on the vector lanes of the stores too), then a small transpose
    out = (win * per_out).sum(tuple(range(1 + n))).contiguous()      # (G, C_out/G, *k, C/G)
    out = out.permute([0, 1, 2 + n] + list(range(2, 2 + n)))
    return out.reshape((c_out, c_in_group) + kernel)


def _define_conv_gradient(out: Tensor, x: Tensor, padded_x: Tensor, weight: Tensor,
                          pads: Sequence[tuple[int, int]], strides: Sequence[int], dilations: Sequence[int],
                          groups: int, channels_last: bool) -> None:
    """Give out = conv(padded_x = x zero-padded by pads, weight) its own gradient (autograd.define_gradient):
    differentiating its window views generically would give, per kernel tap, a shifted, padded reduce
    over the output channels, summed — an untiled kernel many times slower than the forward."""
    if not GradMode.enabled or not (needs_grad(x.node) or needs_grad(weight.node)):
        return
    device = out.device
    # the nodes at forward time (a parameter's tensor moves on to new nodes when an optimizer steps)
    x_node, padded_node, w_node = x.node, padded_x.node, weight.node
    sizes = tuple(x.shape[2:])
    kernel = tuple(weight.shape[2:])

    def rule(grad: Node, wanted: tuple[bool, ...]) -> tuple[Node | None, ...]:
        upstream, w = Tensor._from_node(grad, device), Tensor._from_node(w_node, device)
        grad_x = grad_w = None
        if wanted[0]:
            grad_x = _conv_input_grad(upstream, w, sizes, pads, strides, dilations, groups).node
        if wanted[1]:
            padded = Tensor._from_node(padded_node, device)
            weight_grad = _conv_weight_grad
            if channels_last:
                weight_grad = _conv_weight_grad_channels_last
            grad_w = weight_grad(upstream, padded, kernel, strides, dilations, groups).node
        return grad_x, grad_w

    define_gradient(out.node, (x_node, w_node), rule)


def _convnd(op: str, n: int, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any,
            dilation: Any, groups: int) -> Tensor:
    """N-d convolution (cross-correlation, as torch) of x (N, C_in, *in) with weight (C_out, C_in/g, *k)."""
    _check_dtypes(op, x, weight, bias)
    x, unbatched = _batched(op, x, n)
    if weight.ndim != n + 2:
        raise RuntimeError(f"{op}: expected a {n + 2}D weight (out_channels, in_channels/groups, *kernel), "
                           f"got weight of size {list(weight.shape)}")
    strides = ntuple(stride, n, "stride", op)
    dilations = ntuple(dilation, n, "dilation", op)
    if any(s <= 0 for s in strides) or any(d <= 0 for d in dilations):
        raise RuntimeError(f"{op}: stride {strides} and dilation {dilations} must be positive")
    c_out, c_in_group = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    if groups <= 0 or c_out % groups:
        raise RuntimeError(f"{op}: groups ({groups}) must be positive and divide out_channels ({c_out})")
    if x.shape[1] != c_in_group * groups:
        raise RuntimeError(f"{op}: given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input {list(x.shape)} to have {c_in_group * groups} channels, but got "
                           f"{x.shape[1]} channels instead")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise RuntimeError(f"{op}: expected bias of shape ({c_out},), got {list(bias.shape)}")
    pads = _conv_padding(op, padding, n, kernel, strides, dilations)
    unpadded = x
    x = x.pad(_trailing_pad(pads))
    _check_kernel_fits(op, tuple(x.shape[2:]), kernel, dilations)
    if _conv_layout(x, weight, groups, strides, dilations) == "channels_last":
        out = _conv_channels_last(x, weight, strides, dilations, groups)
        _define_conv_gradient(out, unpadded, x, weight, pads, strides, dilations, groups, True)
        if bias is not None:
            out = out + bias.reshape((1, c_out) + (1,) * n)
        return out.squeeze(0) if unbatched else out
    padded_x = x
    if x.node.op is not Op.BUFFER:
        # the sliding-window view reads every input element K times: store the (padded) input once so
        # the windows index a plain buffer (clean, vectorizable addresses; no per-read recompute)
        x = x.contiguous()
    out = direct_conv(x, weight, kernel, strides, dilations, groups)
    _define_conv_gradient(out, unpadded, padded_x, weight, pads, strides, dilations, groups, False)
    if bias is not None:
        out = out + bias.reshape((1, c_out) + (1,) * n)
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
           padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1, groups: int = 1) -> Tensor:
    """1-D convolution: (N, C_in, L) * (C_out, C_in/groups, k) → (N, C_out, L_out)."""
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
           padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1, groups: int = 1) -> Tensor:
    """2-D convolution: (N, C_in, H, W) * (C_out, C_in/groups, kh, kw) → (N, C_out, H_out, W_out)."""
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
           padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1, groups: int = 1) -> Tensor:
    """3-D convolution: (N, C_in, D, H, W) * (C_out, C_in/groups, kd, kh, kw) → (N, C_out, D', H', W')."""
    return _convnd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transposend(op: str, n: int, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
                      padding: Any, output_padding: Any, groups: int, dilation: Any) -> Tensor:
    """Transposed convolution of x (N, C_in, *in) with weight (C_in, C_out/g, *k): the gradient of conv
    with respect to its input. Computed as a stride-1 conv over x with (stride - 1) zeros between
    elements, padded by d·(k-1) - p (+ output_padding after), with the weight flipped and transposed."""
    _check_dtypes(op, x, weight, bias)
    x, unbatched = _batched(op, x, n)
    if weight.ndim != n + 2:
        raise RuntimeError(f"{op}: expected a {n + 2}D weight (in_channels, out_channels/groups, *kernel), "
                           f"got weight of size {list(weight.shape)}")
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of ints (torch has no string padding for "
                         f"transposed convolutions), got {padding!r}")
    strides = ntuple(stride, n, "stride", op)
    dilations = ntuple(dilation, n, "dilation", op)
    pads = ntuple(padding, n, "padding", op)
    out_pads = ntuple(output_padding, n, "output_padding", op)
    if any(s <= 0 for s in strides) or any(d <= 0 for d in dilations) or any(p < 0 for p in pads):
        raise RuntimeError(f"{op}: stride {strides} and dilation {dilations} must be positive and padding "
                           f"{pads} non-negative")
    for op_, s, d in zip(out_pads, strides, dilations):
        if not 0 <= op_ < max(s, d):
            raise RuntimeError(f"{op}: output padding must be smaller than either stride or dilation, got "
                               f"output_padding={out_pads}, stride={strides}, dilation={dilations}")
    c_in, c_out_group = weight.shape[0], weight.shape[1]
    kernel = tuple(weight.shape[2:])
    if groups <= 0 or c_in % groups:
        raise RuntimeError(f"{op}: groups ({groups}) must be positive and divide in_channels ({c_in})")
    if x.shape[1] != c_in:
        raise RuntimeError(f"{op}: given transposed=1, weight of size {list(weight.shape)}, expected input "
                           f"{list(x.shape)} to have {c_in} channels, but got {x.shape[1]} channels instead")
    c_out = c_out_group * groups
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise RuntimeError(f"{op}: expected bias of shape ({c_out},), got {list(bias.shape)}")
    sizes = tuple(x.shape[2:])
    outs = tuple((i - 1) * s - 2 * p + d * (k - 1) + q + 1
                 for i, s, p, d, k, q in zip(sizes, strides, pads, dilations, kernel, out_pads))
    if any(o <= 0 for o in outs):
        raise RuntimeError(f"{op}: the output size {outs} is not positive for input size {sizes}")
    # negative amounts crop (when padding > d·(k-1))
    full = [(d * (k - 1) - p, d * (k - 1) - p + q) for d, k, p, q in zip(dilations, kernel, pads, out_pads)]
    out = _transposed_conv(op, x, weight, bias, strides, dilations, groups, full)
    return out.squeeze(0) if unbatched else out


def _transposed_conv(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, strides: Sequence[int],
                     dilations: Sequence[int], groups: int, full: Sequence[tuple[int, int]]) -> Tensor:
    """The core of a transposed convolution of x (N, C_in, *in) with weight (C_in, C_out/G, *k): insert
    (stride - 1) zeros between input elements, pad by `full` (before, after) per dim (negative crops),
    then a stride-1 convolution with the weight flipped and its channel axes swapped."""
    n = x.ndim - 2
    batch, c_in, sizes = x.shape[0], x.shape[1], tuple(x.shape[2:])
    c_out_group = weight.shape[1]
    kernel = tuple(weight.shape[2:])
    c_out = c_out_group * groups
    # insert (stride - 1) zeros between input elements: (i,) → (i, s) padded → (i·s) cropped to (i-1)·s + 1
    if any(s > 1 for s in strides):
        x = x.reshape((batch, c_in) + _interleave(sizes, (1,) * n))
        x = x.pad(_trailing_pad([p for s in strides for p in ((0, 0), (0, s - 1))]))
        x = x.reshape((batch, c_in) + tuple(i * s for i, s in zip(sizes, strides)))
        x = _shrink_last(x, [(0, (i - 1) * s + 1) for i, s in zip(sizes, strides)])
    x = x.pad(_trailing_pad(full))   # Tensor.pad crops where an amount is negative
    # weight (C_in, C_out/G, *k) → (C_out, C_in/G, *k), flipped in space
    w = weight.reshape((groups, c_in // groups, c_out_group) + kernel).transpose(1, 2)
    w = w.reshape((c_out, c_in // groups) + kernel).flip(tuple(range(2, 2 + n)))
    return _convnd(op, n, x, w, bias, 1, 0, dilations, groups)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
                     padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                     dilation: IntOrTuple = 1) -> Tensor:
    """1-D transposed convolution: (N, C_in, L) with weight (C_in, C_out/groups, k) → (N, C_out, L_out)."""
    return _conv_transposend("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding,
                             groups, dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
                     padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                     dilation: IntOrTuple = 1) -> Tensor:
    """2-D transposed convolution: (N, C_in, H, W) with weight (C_in, C_out/groups, kh, kw)."""
    return _conv_transposend("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding,
                             groups, dilation)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrTuple = 1,
                     padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                     dilation: IntOrTuple = 1) -> Tensor:
    """3-D transposed convolution: (N, C_in, D, H, W) with weight (C_in, C_out/groups, kd, kh, kw)."""
    return _conv_transposend("conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding,
                             groups, dilation)


# ---- layers ----

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared parameters, init and repr of Conv*d and ConvTranspose*d (torch's _ConvNd)."""
    n: int = 0
    transposed: bool = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", output_padding: IntOrTuple = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported, got {padding_mode!r}')
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, self.n, "kernel_size", name)
        self.stride = ntuple(stride, self.n, "stride", name)
        self.dilation = ntuple(dilation, self.n, "dilation", name)
        self.output_padding = ntuple(output_padding, self.n, "output_padding", name)
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if self.transposed:
                raise ValueError(f"{name}: padding must be an int or tuple of ints, got {padding!r}")
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of 'valid', "
                                 f"'same'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
            self.padding: Any = padding
        else:
            self.padding = ntuple(padding, self.n, "padding", name)
        if self.transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.default_float
        self.weight = Parameter(init.placeholder(shape, dtype=dt, device=device))
        if bias:
            self.bias = Parameter(init.placeholder((out_channels,), dtype=dt, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: kaiming_uniform_(a=sqrt(5)) on the weight, i.e. U(±1/sqrt(fan_in)), and the
        same bound for the bias; fan_in = weight.size(1) · prod(kernel) in both weight layouts."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Tensor) -> None:
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected an lt.Tensor input, got {type(x).__name__}")
        if x.ndim not in (self.n + 1, self.n + 2):
            raise RuntimeError(f"{name}: expected {self.n + 1}D (unbatched) or {self.n + 2}D (batched) "
                               f"input, but got input of size {list(x.shape)}")
        channels = x.shape[x.ndim - self.n - 1]
        if channels != self.in_channels:
            raise RuntimeError(f"{name}: expected input with {self.in_channels} channels (in_channels), but "
                               f"got input of size {list(x.shape)} with {channels} channels")

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.n:
            shown = repr(self.padding) if isinstance(self.padding, str) else str(self.padding)
            s += f", padding={shown}"
        if self.dilation != (1,) * self.n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """Conv1d/2d/3d: forward applies the padding mode, then the convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        op = f"conv{self.n}d"
        if self.padding_mode == "zeros":
            return _convnd(op, self.n, input, self.weight, self.bias, self.stride, self.padding,
                           self.dilation, self.groups)
        if self.padding == "valid":
            pairs = [(0, 0)] * self.n
        elif self.padding == "same":
            pairs = _same_padding(self.kernel_size, self.dilation)
        else:
            pairs = [(p, p) for p in self.padding]
        padded = input.pad(_trailing_pad(pairs), mode=self.padding_mode)
        return _convnd(op, self.n, padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-D convolution layer: weight (out_channels, in_channels/groups, k), bias (out_channels,)."""
    n = 1


class Conv2d(_Conv):
    """2-D convolution layer: weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,)."""
    n = 2


class Conv3d(_Conv):
    """3-D convolution layer: weight (out_channels, in_channels/groups, kd, kh, kw), bias (out_channels,)."""
    n = 3


class _ConvTranspose(_ConvNd):
    """ConvTranspose1d/2d/3d; forward(input, output_size=None) like torch."""
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrTuple = 1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype)

    def _output_padding(self, input: Tensor, output_size: Sequence[int] | None) -> tuple[int, ...]:
        """The output_padding that yields output_size (torch's rule), or the layer's own."""
        if output_size is None:
            return self.output_padding
        want = tuple(int(s) for s in output_size)
        if len(want) == self.n + 2 or len(want) == self.n + 1:
            want = want[len(want) - self.n:]
        if len(want) != self.n:
            raise ValueError(f"{type(self).__name__}: output_size must have {self.n} or {self.n + 2} "
                             f"elements, got {len(output_size)}")
        extra = []
        sizes = input.shape[input.ndim - self.n:]
        for i, w, s, p, d, k in zip(sizes, want, self.stride, self.padding, self.dilation, self.kernel_size):
            smallest = (i - 1) * s - 2 * p + d * (k - 1) + 1
            if not smallest <= w < smallest + s:
                raise ValueError(f"{type(self).__name__}: requested an output size of {want}, but valid "
                                 f"sizes range from {smallest} to {smallest + s - 1} (for an input of "
                                 f"{tuple(sizes)})")
            extra.append(w - smallest)
        return tuple(extra)

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        self._check_input(input)
        out_pad = self._output_padding(input, output_size)
        return _conv_transposend(f"conv_transpose{self.n}d", self.n, input, self.weight, self.bias,
                                 self.stride, self.padding, out_pad, self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution layer: weight (in_channels, out_channels/groups, k)."""
    n = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution layer: weight (in_channels, out_channels/groups, kh, kw)."""
    n = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution layer: weight (in_channels, out_channels/groups, kd, kh, kw)."""
    n = 3

