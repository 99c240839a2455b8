"""Explicit vector lanes: the stores of a register tile, regrouped into vector stores.

After `opt.upcast_reduce_tiles` a tiled nest holds one scalar store per lane of its tile, and the
C compiler's SLP vectorizer has to find the vectors again. It often does (a matmul tile), but not
always: on a 3x3 convolution GCC 12 kept most FMAs scalar, split 32-lane rows into zmm + ymm +
xmm + scalar pieces, and shuffled lanes with vpermd. This pass does that regrouping itself:

- stores to b[base + c], b[base + c + 1], … b[base + c + W - 1] (W lanes of the host's vector
  register) become one store of a vector value (a Node with shape (W,));
- their values are matched node by node across the lanes ("packed"): the same node in every
  lane is a broadcast (EXPAND to (W,)); loads of consecutive elements are one vector load; the
  same op over packed operands is that op on vectors; REDUCE_LOOPs over the same ranges become
  one vector accumulator.

A run shorter than a register (the 10 outputs of a classifier layer, the last 8 lanes of a 24-wide
tile) packs too, as a vector of the next power-of-two lanes whose loads and stores touch only the
run's elements (render/c.py: masked loads and stores); its spare lanes compute values never stored.

Comparisons and their logic pack as lane masks, selects and max as blends under them (a ReLU
epilogue). Where an epilogue does not pack (erf, a cast), the REDUCE_LOOPs still do: the scalar
epilogue reads their lanes (LANE nodes). Where nothing matches (a gathered load, a 16-bit float)
the stores stay scalar, as before. The C renderer writes vector nodes with GCC's vector
extensions (render/c.py). The arithmetic per lane is the same as the scalar code's, so results
are bit-identical.
"""
from __future__ import annotations

from dataclasses import replace

from lazytensor import dtypes
from lazytensor import symbolic as sym
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

from lazytensor.codegen.cpu_target import VectorUnit, host_has_fma, host_vector_unit
from lazytensor.codegen.kernel import LoopKernel, LoopNest, Store, reduce_loops

VECTOR_DTYPES = (dtypes.float32, dtypes.float64)
"""Element types packed into vectors (16-bit floats are rounded per op through integer helpers)."""
ELEMENTWISE_OPS = frozenset({Op.ADD, Op.MUL, Op.FDIV, Op.NEG, Op.RECIPROCAL, Op.MAX, Op.WHERE, Op.MULADD})
"""Float ops on vectors: C operators lane by lane (same rounding as the scalar code), MAX and WHERE
as bit blends under a lane mask, MULADD as the fused multiply-add helper (render/c.py)."""
MASK_OPS = frozenset({Op.CMPLT, Op.CMPNE, Op.AND, Op.OR, Op.XOR})
"""Ops on bools packed as lane masks (all bits set or clear, integers as wide as the float lanes):
comparisons of float vectors or masks, and their logic."""


def packs_whole(value: Node) -> bool:
    """Whether every float or bool value in a stored value's expression is of a kind _Packer packs
    (so its lanes can become vectors end to end; index arithmetic is shared by the lanes)."""
    for n in toposort([value]):
        if n.dtype.is_bool and n.op not in MASK_OPS and n.op is not Op.CONST:
            return False
        if n.dtype.is_float and (n.dtype not in VECTOR_DTYPES or n.op not in ELEMENTWISE_OPS
                                 and n.op not in (Op.LOAD, Op.REDUCE_LOOP, Op.CONST)):
            return False
    return True


def vector_lanes(dt: dtypes.DType, unit: VectorUnit | None = None) -> int:
    """Lanes of dt in one vector register of the host (float32 on AVX-512: 16)."""
    unit = unit or host_vector_unit()
    return unit.width_bytes // dt.itemsize


def broadcast(node: Node, lanes: int) -> Node:
    """The vector with node's value in every lane."""
    return Node.make(Op.EXPAND, node.dtype, (node,), (lanes,), (lanes,))


def lane(vector: Node, index: int) -> Node:
    """Element `index` of a vector node, as a scalar node."""
    return Node.make(Op.LANE, vector.dtype, (vector,), index, ())


MIN_PARTIAL_LANES = 2
"""Shortest run of consecutive stores packed into a vector narrower than a register."""


def register_lanes(lanes: int) -> int:
    """Lanes of the vector type that holds a run of `lanes` (GCC's vector sizes are powers of two)."""
    return 1 << (lanes - 1).bit_length()


class _Packer:
    """Matches tuples of scalar nodes (one per lane) to vector nodes of as many lanes, memoized. All
    float lanes of one packer have one dtype (`element`); bools become masks as wide."""

    def __init__(self, element: dtypes.DType, lane_ranges: frozenset[Node]):
        self.element = element
        self.lane_ranges = lane_ranges
        self.memo: dict[tuple[Node, ...], Node | None] = {}
        self.lane_memo: dict[tuple[Node, ...], tuple[Node, ...]] = {}

    def pack(self, nodes: tuple[Node, ...]) -> Node | None:
        """The vector node whose lane i is nodes[i], or None when the lanes do not match."""
        if nodes not in self.memo:
            self.memo[nodes] = self._pack(nodes)
        return self.memo[nodes]

    def _packable_dtype(self, n: Node) -> bool:
        if n.dtype.is_bool:
            return n.op in MASK_OPS
        return n.dtype is self.element and (n.op in ELEMENTWISE_OPS or n.op in (Op.LOAD, Op.REDUCE_LOOP))

    def _pack(self, nodes: tuple[Node, ...]) -> Node | None:
        first = nodes[0]
        lanes = len(nodes)
        if all(n is first for n in nodes):
            if first.dtype.is_bool or first.dtype is self.element:
                return broadcast(first, lanes)
            return None
        if first.op is Op.LOAD and first.dtype is self.element and all(
                n.op is Op.LOAD and len(n.srcs) == 1 and n.arg == first.arg and n.dtype is first.dtype
                for n in nodes) and _consecutive([n.srcs[0] for n in nodes]):
            return Node.make(Op.LOAD, first.dtype, (first.srcs[0],), first.arg, (lanes,))
        masked = self._masked_load(nodes)
        if masked is not None or first.op in (Op.LOAD, Op.CONST):
            return masked
        if not self._packable_dtype(first):
            return None
        if any(n.op is not first.op or n.dtype is not first.dtype or n.arg != first.arg
               or len(n.srcs) != len(first.srcs) for n in nodes):
            return None
        if first.op is Op.REDUCE_LOOP:
            reduce_op, ranges = first.arg
            if reduce_op is not Op.ADD or any(r in self.lane_ranges for r in ranges):
                return None
        if first.op in (Op.CMPLT, Op.CMPNE) and not all(
                s.dtype.is_bool or s.dtype is self.element for s in first.srcs):
            return None
        srcs = []
        for position in range(len(first.srcs)):
            packed = self.pack(tuple(n.srcs[position] for n in nodes))
            if packed is None:
                return None
            srcs.append(packed)
        return Node.make(first.op, first.dtype, tuple(srcs), first.arg, (lanes,))

    def _masked_load(self, nodes: tuple[Node, ...]) -> Node | None:
        """Lanes that load consecutive elements of one buffer, some of them under an index gate (a
        padded view: a gated LOAD, or `gate ? load : 0`) or folded to zero where the gate never holds,
        as one vector load under a lane mask: LOAD(srcs (first lane's index, mask bits)), bit l set
        where lane l reads memory. The bits are an index expression, one product per distinct gate
        (at most MAX_MASK_GATES), so a conv's padded borders cost a few scalar ops per load instead
        of a stored copy of the padded input."""
        if any(n.dtype is not self.element for n in nodes):
            return None
        forms = [_gated_load(n) for n in nodes]
        if any(form is None for form in forms):
            return None
        loads = [(lane, load, gate) for lane, (load, gate) in enumerate(forms) if load is not None]
        if not loads:
            return None
        first_lane, first, _ = loads[0]
        slot = first.arg
        base = sym.add(first.srcs[0], sym.const(-first_lane)) if first_lane else first.srcs[0]
        terms0, const0 = sym._linear(base)
        always = 0
        gated: dict[Node, int] = {}
        for lane, load, gate in loads:
            terms, const = sym._linear(load.srcs[0])
            if load.arg != slot or terms != terms0 or const != const0 + lane:
                return None
            if gate is None:
                always |= 1 << lane
            else:
                gated[gate] = gated.get(gate, 0) | 1 << lane
        if not gated and len(loads) == len(nodes) or len(gated) > MAX_MASK_GATES:
            return None
        bits = sym.const(always)
        for gate, lanes_bits in gated.items():
            # (long long)gate * bits: no branch (GCC made `gate ? bits : 0` a jump per load)
            chosen = Node.make(Op.CAST, sym.INDEX, (gate,), None, ())
            bits = sym.add(bits, sym.mul(chosen, sym.const(lanes_bits)))
        return Node.make(Op.LOAD, self.element, (base, bits), slot, (len(nodes),))

    def lanes_of(self, nodes: tuple[Node, ...]) -> tuple[Node, ...]:
        """Scalar nodes equal to nodes[i], in which the tuples of REDUCE_LOOPs that pack are read
        from lanes of one vector accumulator: the tile's FMAs stay vector code when its epilogue
        (an activation not in ELEMENTWISE_OPS) does not pack."""
        if nodes not in self.lane_memo:
            self.lane_memo[nodes] = self._lanes_of(nodes)
        return self.lane_memo[nodes]

    def _lanes_of(self, nodes: tuple[Node, ...]) -> tuple[Node, ...]:
        first = nodes[0]
        if first.op is Op.REDUCE_LOOP:
            packed = self.pack(nodes)
            if packed is not None and packed.op is Op.REDUCE_LOOP:
                return tuple(lane(packed, i) for i in range(len(nodes)))
            return nodes
        if not first.srcs or all(n is first for n in nodes) or any(
                n.op is not first.op or len(n.srcs) != len(first.srcs) for n in nodes):
            return nodes
        columns = [self.lanes_of(tuple(n.srcs[p] for n in nodes)) for p in range(len(first.srcs))]
        out = []
        for i, n in enumerate(nodes):
            srcs = tuple(column[i] for column in columns)
            out.append(n if srcs == n.srcs else Node.make(n.op, n.dtype, srcs, n.arg, n.shape))
        return tuple(out)


MAX_MASK_GATES = 4
"""Most distinct gates one masked vector load combines (a padded row's left and right borders and the
row's own gate; lanes each gated by their own value are a select, not a padded read)."""


def _gated_load(n: Node) -> tuple[Node | None, Node | None] | None:
    """A lane of a padded read as (load without gate, index gate or None): a plain LOAD, a gated LOAD,
    `gate ? LOAD : 0`; (None, None) for a zero (a lane whose gate never holds); None otherwise. Gates
    must compare indices only (no loaded values)."""
    if n.op is Op.CONST:
        return (None, None) if n.arg == 0 else None
    gate = None
    if n.op is Op.WHERE and n.srcs[2].op is Op.CONST and n.srcs[2].arg == 0 and n.srcs[1].op is Op.LOAD:
        gate, n = n.srcs[0], n.srcs[1]
    if n.op is not Op.LOAD:
        return None
    if len(n.srcs) == 2:
        inner = n.srcs[1]
        gate = inner if gate is None or gate is inner else Node.make(Op.AND, inner.dtype, (gate, inner))
        n = Node.make(Op.LOAD, n.dtype, (n.srcs[0],), n.arg, n.shape)
    if gate is not None and any(m.op is Op.LOAD for m in toposort([gate])):
        return None
    return n, gate


def _consecutive(indices: list[Node]) -> bool:
    """indices[i] == indices[0] + i for every lane i (same linear terms, constants one apart)."""
    terms0, const0 = sym._linear(indices[0])
    for i, index in enumerate(indices[1:], start=1):
        terms, const = sym._linear(index)
        if const != const0 + i or terms != terms0:
            return False
    return True


def _stretches(stores: tuple[Store, ...]) -> tuple[list[list[Store]], list[Store]]:
    """Stores grouped into stretches of consecutive elements of one buffer (in element order), and
    the stores with no neighbour."""
    by_base: dict[tuple, list[tuple[int, Store]]] = {}
    for st in stores:
        terms, const = sym._linear(st.index)
        key = (st.slot, tuple(sorted(terms.items(), key=lambda item: id(item[0]))))
        by_base.setdefault(key, []).append((const, st))
    stretches: list[list[Store]] = []
    rest: list[Store] = []
    for members in by_base.values():
        members.sort(key=lambda item: item[0])
        i = 0
        while i < len(members):
            end = i + 1
            while end < len(members) and members[end][0] == members[i][0] + (end - i):
                end += 1
            if end - i >= MIN_PARTIAL_LANES:
                stretches.append([st for _, st in members[i:end]])
            else:
                rest.append(members[i][1])
            i = end
    return stretches, rest


def _run_length(packer: _Packer, stretch: list[Store], lanes: int) -> int:
    """How many lanes the stretch's first run takes: the longest (at most a register) whose values
    pack, or whose reduces do."""
    for length in range(min(lanes, len(stretch)), MIN_PARTIAL_LANES - 1, -1):
        values = tuple(st.value for st in stretch[:length])
        packed = packer.pack(values)
        if packed is not None and packed.op is not Op.EXPAND:
            return length
        if packer.lanes_of(values) != values:
            return length
    return min(lanes, len(stretch))


def _runs(packer: _Packer, stores: tuple[Store, ...], lanes: int) -> tuple[list[list[Store]], list[Store]]:
    """Stores grouped into runs of consecutive elements of one buffer (lane order), and the stores
    left over. Each stretch is cut greedily, every run as long as packs (_run_length) from where the
    last one ended: a tile 10 outputs wide stores its rows back to back, 60 consecutive elements that
    pack per row, in runs of 10 on AVX-512 and of 8 + 2 on AVX2 (runs of 8 across the rows, each row's
    broadcast operand changing mid-run, packed nothing: the classifier matmul of an MLP ran scalar)."""
    stretches, rest = _stretches(stores)
    runs: list[list[Store]] = []
    for stretch in stretches:
        start = 0
        while start < len(stretch):
            length = _run_length(packer, stretch[start:], lanes)
            run = stretch[start:start + length]
            if len(run) >= MIN_PARTIAL_LANES:
                runs.append(run)
            else:
                rest += run
            start += length
    return runs, rest


def vectorize_nest(nest: LoopNest, lane_ranges: frozenset[Node], unit: VectorUnit | None = None
                   ) -> tuple[LoopNest, int]:
    """The nest with every run of consecutive plain stores whose values pack replaced by one vector
    store; also how many vector stores it made (0: the nest is returned unchanged)."""
    if nest.body_stores or len(nest.stores) < 2:
        return nest, 0
    plain = [st for st in nest.stores if st.reduce_op is None and not st.replace_op
             and st.value.dtype in VECTOR_DTYPES and not st.value.shape]
    if len(plain) < len(nest.stores):
        return nest, 0
    lanes = vector_lanes(plain[0].value.dtype, unit)
    if lanes < 2 or any(st.value.dtype is not plain[0].value.dtype for st in plain):
        return nest, 0
    packer = _Packer(plain[0].value.dtype, lane_ranges)
    runs, rest = _runs(packer, nest.stores, lanes)
    stores: list[Store] = []
    count = 0
    for run in runs:
        value = packer.pack(tuple(st.value for st in run))
        if value is not None and value.op is not Op.EXPAND:
            stores.append(Store(run[0].slot, run[0].index, value))
            count += 1
            continue
        values = packer.lanes_of(tuple(st.value for st in run))
        if any(v is not st.value for v, st in zip(values, run)):
            count += 1
        stores += [Store(st.slot, st.index, v) for st, v in zip(run, values)]
    if not count:
        return nest, 0
    return replace(nest, stores=tuple(stores + rest)), count


def one_instruction_fma(reduce: Node) -> bool:
    """The C renderer writes this reduce's vector FMA as one intrinsic (a whole register on an AVX-512
    host, or on an AVX host with FMA; render/c.py), not as a per-lane loop; scalar reduces count as
    such too."""
    if not reduce.shape:
        return True
    unit = host_vector_unit()
    whole_register = register_lanes(reduce.shape[0]) * reduce.dtype.itemsize == unit.width_bytes
    return whole_register and (unit.width_bytes == 64 or (unit.width_bytes == 32 and host_has_fma()))


def _widths(nest: LoopNest) -> str:
    """The lane counts of a vectorized nest's vector stores, for its note."""
    widths = sorted({st.value.shape[0] for st in nest.stores if st.value.shape}, reverse=True)
    return "/".join(map(str, widths)) or "scalar"


def vectorize_tiles(kernel: LoopKernel, choices=None) -> LoopKernel:
    """Regroup the lanes of each register tile into explicit vectors (see the module docstring)."""
    if choices is not None and not choices.vectorize:
        return kernel
    nests = []
    notes = list(kernel.notes)
    rolled: set[Node] = set()
    for nest in kernel.nests:
        nest, count = vectorize_nest(nest, kernel.lane_ranges)
        if count:
            notes.append(f"vectorize {count} runs of {_widths(nest)} lanes")
            reduces = [n for st in nest.stores for n in reduce_loops(st.value)]
            if not all(one_instruction_fma(n) for n in reduces):
                rolled |= {r for n in reduces if n.shape for r in n.arg[1]}
        nests.append(nest)
    # GCC's unroll pragma around vector code unrolls the lanes of a per-lane fma helper too (cunrolli
    # runs before the vectorizer), and SLP rebuilds them badly: a 3x3 conv ran 3-5x slower unrolled.
    # Whole AVX-512 registers use an intrinsic, which unrolls well (the same conv: 1371 -> 1313 us)
    unrolled = kernel.unrolled_ranges - rolled
    return replace(kernel, nests=tuple(nests), notes=tuple(notes), unrolled_ranges=frozenset(unrolled))
