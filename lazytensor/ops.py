"""The primitive ops. Every user-facing op is composed from these; each backend only has to
render these; autograd has one rule per differentiable one.

Tensor-level ops carry a shape (see graph.py). Kernel-level ops (RANGE, LOAD, ...) only
appear inside a kernel after lowering (codegen/lower.py) and are scalars.
"""
from __future__ import annotations

from enum import Enum, auto


class Op(Enum):
    # ---- unary: one source, same shape ----
    EXP2 = auto()        #: 2**x (floats)
    LOG2 = auto()        #: log2(x) (floats)
    SIN = auto()         #: sin(x) (floats)
    COS = auto()         #: cos(x) (floats)
    SQRT = auto()        #: sqrt(x) (floats)
    RECIPROCAL = auto()  #: 1/x (floats)
    NEG = auto()         #: -x (wraps for integers)
    TRUNC = auto()       #: round toward zero (floats)
    CAST = auto()        #: value conversion to node.dtype (C semantics; to bool means != 0)
    BITCAST = auto()     #: reinterpret the bits as node.dtype (same itemsize)
    # ---- binary: two sources of equal shape and dtype ----
    ADD = auto()
    MUL = auto()
    FDIV = auto()        #: true division, floats only (correctly rounded, unlike x * (1/y))
    MAX = auto()         #: NaN-propagating maximum
    MOD = auto()         #: C remainder: sign of the dividend (fmod for floats)
    IDIV = auto()        #: C integer division: rounds toward zero (integers only)
    CMPLT = auto()       #: a < b, result bool
    CMPNE = auto()       #: a != b, result bool
    AND = auto()         #: bitwise/logical and (ints, bools)
    OR = auto()
    XOR = auto()
    SHL = auto()
    SHR = auto()         #: arithmetic for signed, logical for unsigned
    # ---- ternary ----
    WHERE = auto()       #: srcs (cond: bool, a, b): cond ? a : b
    MULADD = auto()      #: srcs (a, b, c): a*b + c rounded once (fused multiply-add), floats only; made
                         #: only by math expansions that want it (exp's polynomial), never for a user's a*b+c
    # ---- reduce: arg = (binary op ADD|MUL|MAX, axes); reduced axes keep size 1 ----
    REDUCE = auto()
    # ---- movement: views, never copies; arg describes the view ----
    RESHAPE = auto()     #: arg = new shape
    PERMUTE = auto()     #: arg = order
    EXPAND = auto()      #: arg = new shape (size-1 dims broadcast)
    PAD = auto()         #: arg = ((before, after), ...), pads with zero
    SHRINK = auto()      #: arg = ((start, end), ...)
    FLIP = auto()        #: arg = axes to reverse
    # ---- leaves ----
    BUFFER = auto()      #: a realized buffer; arg = the Buffer (identity)
    CONST = auto()       #: arg = Python scalar, uniform over node.shape
    IOTA = auto()        #: 1-D [0, 1, ..., n-1]
    # ---- materialization ----
    CONTIGUOUS = auto()  #: forces a kernel boundary (user asked for contiguous()/realize())
    COPY = auto()        #: arg = target device name
    WINDOW = auto()      #: sliding windows along one dim (a view; windows may overlap); arg = (dim, size,
                         #: step, dilation); out[..., o, ..., k] = src[..., o*step + k*dilation, ...]
    DETACH = auto()      #: identity that stops gradients (removed before scheduling)
    # ---- indexed access (real indexed loads/stores, O(n)) ----
    INDEX = auto()       #: srcs (src, idx_0, ..., idx_{d-1}); out[i] = src[idx_0[i], ..., idx_{d-1}[i]]
    SCATTER = auto()     #: srcs (base, src, idx_0, ...); arg = reduce op or None (replace):
                         #: out = base; out[idx_0[i], ...] (op)= src[i] for every i of src
    OUTPUTS = auto()     #: a kernel AST with several outputs (schedule-level, sibling_fusion.py):
                         #: srcs = one value per output, all of node.shape; arg = their slot numbers
    # ---- kernel-level (scalar) ops, created by codegen/lower.py ----
    RANGE = auto()       #: a loop variable; arg = (name, size)
    DEFINE_BUF = auto()  #: kernel argument slot; arg = slot number
    LOAD = auto()        #: srcs (index,) or (index, gate); arg = slot number
    REDUCE_LOOP = auto() #: srcs (body,); arg = (binary op, ranges): accumulate body over ranges
    CHECK_INDEX = auto() #: srcs (index,); arg = (size, what): index if 0 <= index < size else error
    LANE = auto()        #: srcs (vector,); arg = lane: one element of a vector value (the CPU's
                         #: register tiles hold nodes of shape (lanes,): codegen/vectorize.py)

    # members are singletons compared by identity: hash them by identity too (C-level, unlike
    # Enum's hash of the member name; every graph node's key hashes its op)
    __hash__ = object.__hash__


UNARY = frozenset({Op.EXP2, Op.LOG2, Op.SIN, Op.COS, Op.SQRT, Op.RECIPROCAL, Op.NEG, Op.TRUNC, Op.CAST,
                   Op.BITCAST})
BINARY = frozenset({Op.ADD, Op.MUL, Op.FDIV, Op.MAX, Op.MOD, Op.IDIV, Op.CMPLT, Op.CMPNE, Op.AND,
                    Op.OR, Op.XOR, Op.SHL, Op.SHR})
ELEMENTWISE = UNARY | BINARY | {Op.WHERE, Op.MULADD}
MOVEMENT = frozenset({Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.PAD, Op.SHRINK, Op.FLIP, Op.WINDOW})
COMMUTATIVE = frozenset({Op.ADD, Op.MUL, Op.MAX, Op.CMPNE, Op.AND, Op.OR, Op.XOR})
COMPARISON = frozenset({Op.CMPLT, Op.CMPNE})
REDUCE_OPS = frozenset({Op.ADD, Op.MUL, Op.MAX})
