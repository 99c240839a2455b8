"""The C dialect: plain C99 for the system compiler, OpenMP pragmas on parallel loops."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from lazytensor import dtypes
from lazytensor import symbolic as sym

from lazytensor.codegen.cpu_target import host_vector_unit
from lazytensor.codegen.kernel import LoopKernel, LoopNest, Store, reduce_loops
from lazytensor.codegen.vectorize import register_lanes
from lazytensor.dtypes import DType
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op
from lazytensor.codegen.render.c_math import VECTORIZABLE_F32
from lazytensor.codegen.render.cstyle import CStyleRenderer


NARROW_HELPER = """static inline float lt_narrow_f32(double x) {
  float f = (float)x;
#if defined(__x86_64__)
  __asm__("" : "+x"(f));   /* GCC 12's SLP vectorizer drops the rounding in (double)(float)x without this */
#else
  __asm__("" : "+m"(f));
#endif
  return f;
}"""


# A select of floats as a bit blend. With C's `c ? a : b`, GCC (without -fno-trapping-math, which we
# cannot use: see runtime/cpu.py) evaluates arithmetic needed by one arm only on that branch and then
# may not vectorize the loop; here both arms are plain operands, and the loop becomes vector blends.
BLEND_HELPERS = {
    "float": """static inline float lt_select_float(int c, float a, float b) {
  unsigned int x, y; memcpy(&x, &a, 4); memcpy(&y, &b, 4);
  unsigned int m = 0u - (unsigned int)(c != 0); unsigned int r = (x & m) | (y & ~m);
  float out; memcpy(&out, &r, 4); return out;
}""",
    "double": """static inline double lt_select_double(int c, double a, double b) {
  unsigned long long x, y; memcpy(&x, &a, 8); memcpy(&y, &b, 8);
  unsigned long long m = 0ull - (unsigned long long)(c != 0); unsigned long long r = (x & m) | (y & ~m);
  double out; memcpy(&out, &r, 8); return out;
}""",
}




def int_blend_helper(name: str, c_type: str) -> str:
    """`name(c, a, b)`: c ? a : b for the integer type c_type without a branch (a mask of c's truth)."""
    mask = "unsigned long long" if "long" in c_type else "unsigned int"
    return (f"static inline {c_type} {name}(int c, {c_type} a, {c_type} b) {{\n"
            f"  {mask} m = 0u - ({mask})(c != 0);\n"
            f"  return ({c_type})((({mask})a & m) | (({mask})b & ~m));\n}}")


MASK_SCALARS = {4: "int", 8: "long long"}


def transpose_helper(side: int, guard: str, vector_body: str) -> str:
    """The C source of `lt_transpose{side}_b32`: a side x side tile of 4-byte elements transposed by
    `vector_body` (C lines, compiled where the macro `guard` is defined), else element by element."""
    return (f"#if defined({guard})\n#include <immintrin.h>\n#endif\n"
            f"static inline void lt_transpose{side}_b32(void* restrict dst, long long ds, "
            f"const void* restrict src, long long ss) {{\n"
            f"#if defined({guard})\n{vector_body}#else\n"
            f"  const char* s = (const char*)src; char* d = (char*)dst;\n"
            f"  for (int i = 0; i < {side}; i++)\n"
            f"    for (int j = 0; j < {side}; j++) memcpy(d + (j * ds + i) * 4, s + (i * ss + j) * 4, 4);\n"
            f"#endif\n}}")


# A 16×16 tile of 4-byte elements transposed through AVX-512 registers (codegen/transpose_tiles.py):
# dst row j, element i = src row i, element j. Rows are 16 contiguous elements, `ds` and `ss` elements
# apart. Three rounds of shuffles: 32-bit pairs, 64-bit pairs within 128-bit lanes, then 128-bit lanes.
# The bits are moved, never converted, so any 4-byte dtype is copied exactly.
TRANSPOSE16_HELPER = transpose_helper(16, "__AVX512F__", """  const float* s = (const float*)src; float* d = (float*)dst;
  __m512 r[16], t[16];
  _Pragma("GCC unroll 16")
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(s + i * ss);
  _Pragma("GCC unroll 8")
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  _Pragma("GCC unroll 4")
  for (int i = 0; i < 16; i += 4) {
    __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    __m512d c = _mm512_castps_pd(t[i + 2]), e = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
  _Pragma("GCC unroll 4")
  for (int c = 0; c < 4; c++) {   /* r[4g + c], lane L: column 4L + c of rows 4g..4g+3 */
    __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44), v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xEE);
    __m512 v2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44), v3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xEE);
    _mm512_storeu_ps(d + c * ds, _mm512_shuffle_f32x4(v0, v2, 0x88));
    _mm512_storeu_ps(d + (4 + c) * ds, _mm512_shuffle_f32x4(v0, v2, 0xDD));
    _mm512_storeu_ps(d + (8 + c) * ds, _mm512_shuffle_f32x4(v1, v3, 0x88));
    _mm512_storeu_ps(d + (12 + c) * ds, _mm512_shuffle_f32x4(v1, v3, 0xDD));
  }
""")


# The same for an 8×8 tile through AVX registers: 32-bit pairs, 64-bit pairs, then 128-bit halves.
TRANSPOSE8_HELPER = transpose_helper(8, "__AVX__", """  const float* s = (const float*)src; float* d = (float*)dst;
  __m256 r[8], t[8];
  _Pragma("GCC unroll 8")
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + i * ss);
  _Pragma("GCC unroll 4")
  for (int i = 0; i < 8; i += 2) {   /* t[i]: row i and i+1 interleaved, per 128-bit half */
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  _Pragma("GCC unroll 2")
  for (int i = 0; i < 8; i += 4) {   /* r[i + c], each half: column c (of that half) of rows i..i+3 */
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  _Pragma("GCC unroll 4")
  for (int c = 0; c < 4; c++) {      /* low halves give columns 0..3, high halves columns 4..7 */
    _mm256_storeu_ps(d + c * ds, _mm256_permute2f128_ps(r[c], r[4 + c], 0x20));
    _mm256_storeu_ps(d + (4 + c) * ds, _mm256_permute2f128_ps(r[c], r[4 + c], 0x31));
  }
""")

TRANSPOSE_HELPERS = {16: TRANSPOSE16_HELPER, 8: TRANSPOSE8_HELPER}
"""Register-transpose helpers by tile side: 16 (AVX-512) and 8 (AVX) lanes of 4-byte elements."""


def vector_support(scalar: str, lanes: int) -> tuple[str, str]:
    """(type name, source) of GCC's vector of `lanes` `scalar`s with its load, store, broadcast,
    fused multiply-add, select and max helpers (floats), or its broadcast (the integer lane masks
    that vector comparisons give: all bits set where true). Loads and stores go through memcpy (any
    alignment; one vmovups); {name}_load_reg keeps a reused load in a register (_pin_to_register), and
    {name}_load_late is a load the compiler may not move out of its loop: its address passes through
    an empty volatile asm, which stays where it is written. A matmul tile's bias vectors, loaded in
    the epilogue after the reduce, are then not held in registers across the reduce loop (GCC hoisted
    them out of the row-tile loop, and a 6x16 AVX2 tile spilled an accumulator to the stack in every
    step: 37 instead of 72-94 GFLOP/s on one Zen 3 core). The multiply-add is fmaf per lane, which
    GCC turns into one vector FMA: the vector `a * b + c` would not be fused under -ffp-contract=off, and the scalar code's
    results are fused ones. Select and max are bit blends, as the scalar helpers."""
    width = {"float": 4, "double": 8, "int": 4, "long long": 8}[scalar]
    short = {"float": "f32", "double": "f64", "int": "i32", "long long": "i64"}[scalar]
    name = f"lt_{short}x{lanes}"
    every_lane = ", ".join(["x"] * lanes)
    source = [f"typedef {scalar} {name} __attribute__((vector_size({lanes * width})));",
              f"static inline {name} {name}_broadcast({scalar} x) {{ {name} v = {{{every_lane}}}; return v; }}"]
    if scalar in ("float", "double"):
        fma = "__builtin_fmaf" if scalar == "float" else "__builtin_fma"
        mask, mask_source = vector_support(MASK_SCALARS[width], lanes)
        if (scalar, lanes) in FMA_INTRINSICS:
            source.insert(0, "#if defined(__AVX512F__) || defined(__FMA__)\n#include <immintrin.h>\n#endif")
        source = [mask_source] + source + [
            f"static inline {name} {name}_load(const {scalar}* p) {{ {name} v; memcpy(&v, p, sizeof v); return v; }}",
            f"static inline {name} {name}_load_reg(const {scalar}* p) {{",
            f"  {name} v; memcpy(&v, p, sizeof v);",
            *_pin_to_register("v"),
            "  return v;",
            "}",
            f"static inline {name} {name}_load_late(const {scalar}* p) {{",
            '  __asm__ volatile("" : "+r"(p));',
            f"  {name} v; memcpy(&v, p, sizeof v); return v;",
            "}",
            f"static inline void {name}_store({scalar}* p, {name} v) {{ memcpy(p, &v, sizeof v); }}",
            *_partial_load_store(scalar, name, lanes, width),
            f"static inline {name} {name}_fma({name} a, {name} b, {name} c) {{",
            *_fma_body(scalar, name, lanes, fma),
            "}",
            f"static inline {name} {name}_select({mask} m, {name} a, {name} b) {{",
            f"  return ({name})((({mask})a & m) | (({mask})b & ~m));",
            "}",
            f"static inline {name} {name}_max({name} a, {name} b) {{ return {name}_select((a > b) | (a != a), a, b); }}"]
    return name, "\n".join(source)


def _pin_to_register(var: str) -> list[str]:
    """An empty asm statement that takes `var` in a vector register and may change it: the compiler
    must then keep the loaded value in a register and cannot fold the load into each instruction
    that uses it. GCC otherwise turns a matmul tile's two column vectors, each feeding one FMA per
    tile row, back into a memory operand of every FMA: a 4x16 AVX2 tile then issues 12 loads for 8
    FMAs and is load-bound (512³ on one Zen 3 core: 48.6 GFLOP/s, 66.2 with the values pinned)."""
    return ["#if defined(__x86_64__) || defined(__i386__)",
            f'  __asm__("" : "+v"({var}));',
            "#elif defined(__aarch64__)",
            f'  __asm__("" : "+w"({var}));',
            "#endif"]


AVX512_REGISTERS = {("float", 16): ("ps", "__mmask16", "__m512"), ("double", 8): ("pd", "__mmask8", "__m512d")}
"""Vector types that fill an AVX-512 register: (intrinsic suffix, mask type, register type)."""
FMA_INTRINSICS = {("float", 16): ("__AVX512F__", "_mm512_fmadd_ps", "__m512"),
                  ("double", 8): ("__AVX512F__", "_mm512_fmadd_pd", "__m512d"),
                  ("float", 8): ("__FMA__", "_mm256_fmadd_ps", "__m256"),
                  ("double", 4): ("__FMA__", "_mm256_fmadd_pd", "__m256d")}
"""Vector types that fill an AVX-512 or an AVX register, whose multiply-add is one intrinsic where the
compiler targets that unit (the macro): (macro, intrinsic, register type)."""


def _fma_body(scalar: str, name: str, lanes: int, fma: str) -> list[str]:
    """The multiply-add helper's body: one intrinsic for a whole AVX-512 or AVX (with FMA) register,
    else fmaf per lane (GCC makes that loop one vector FMA too, but its unroller, run first, takes the
    loop apart when the helper sits in a loop under an unroll pragma: codegen/vectorize.py keeps those
    pragmas only for the intrinsic). Both round once per lane: the same bits."""
    per_lane = [f"  {name} r;", f"  for (int i = 0; i < {lanes}; i++) r[i] = {fma}(a[i], b[i], c[i]);",
                "  return r;"]
    intrinsic = FMA_INTRINSICS.get((scalar, lanes))
    if intrinsic is None:
        return per_lane
    macro, function, reg = intrinsic
    return [f"#if defined({macro})",
            f"  return ({name}){function}(({reg})a, ({reg})b, ({reg})c);",
            "#else", *per_lane, "#endif"]


def _partial_load_store(scalar: str, name: str, lanes: int, width: int) -> list[str]:
    """Source of {name}_load_part / {name}_store_part: the first n lanes from or to memory, the other
    lanes of a load zero; and {name}_load_mask: the lanes whose bit is set, the others zero (a padded
    view's borders). A whole AVX-512 register uses masked loads and stores (masked lanes never touch
    memory, so the address of a border lane may lie outside the buffer); other vectors copy lane by lane."""
    intrinsic = AVX512_REGISTERS.get((scalar, lanes))
    load = f"  {name} v = {{0}}; memcpy(&v, p, (size_t)n * {width}); return v;"
    store = f"  memcpy(p, &v, (size_t)n * {width});"
    if intrinsic is not None:
        suffix, mask, register = intrinsic
        first_n = f"({mask})((1u << n) - 1u)"
        load = (f"#if defined(__AVX512F__)\n  return ({name})_mm512_maskz_loadu_{suffix}({first_n}, p);\n"
                f"#else\n{load}\n#endif")
        store = (f"#if defined(__AVX512F__)\n  _mm512_mask_storeu_{suffix}(p, {first_n}, ({register})v);\n"
                 f"#else\n{store}\n#endif")
    masked = f"  {name} v = {{0}};\n  for (int i = 0; i < {lanes}; i++) if ((bits >> i) & 1u) v[i] = p[i];\n  return v;"
    if intrinsic is not None:
        masked = (f"#if defined(__AVX512F__)\n  return ({name})_mm512_maskz_loadu_{suffix}(({mask})bits, p);\n"
                  f"#else\n{masked}\n#endif")
    return [f"static inline {name} {name}_load_part(const {scalar}* p, int n) {{\n{load}\n}}",
            f"static inline {name} {name}_load_mask(const {scalar}* p, unsigned int bits) {{\n{masked}\n}}",
            f"static inline void {name}_store_part({scalar}* p, {name} v, int n) {{\n{store}\n}}"]


class CRenderer(CStyleRenderer):
    device = "CPU"
    outline_parallel_body = True
    hoist_above_flat_loop = True

    def select(self, cond: str, a: str, b: str, dt: DType) -> str:
        """cond ? a : b as a bit blend for floats and integers (see max_fn: a branch would keep the
        loop scalar); bools keep the conditional expression."""
        t = self.type_name(dt)
        if dt.is_int:
            name = f"lt_select_{dt.name}"
            self.extra_helpers[name] = int_blend_helper(name, t)
            return f"{name}({cond}, {a}, {b})"
        if t not in BLEND_HELPERS:
            return super().select(cond, a, b, dt)
        self.extra_helpers[f"lt_select_{t}"] = BLEND_HELPERS[t]
        return f"lt_select_{t}({cond}, {a}, {b})"

    def math_fn(self, name: str, dt: DType) -> str:
        """libm's function, or for float32 (and the 16-bit floats, computed in float32) an inline one
        GCC vectorizes where there is one (render/c_math.py: a log2f call kept its loop scalar)."""
        if dt != dtypes.float64 and name in VECTORIZABLE_F32:
            helper, source = VECTORIZABLE_F32[name]
            self.extra_helpers[f"c_math.{source.__name__}"] = source()   # (sin and cos: one source)
            return helper
        return super().math_fn(name, dt)

    def max_fn(self, dt: DType) -> str:
        """Float max (NaN-propagating) as a bit blend: `c ? a : b` is a branch that GCC cannot
        vectorize without loop if-conversion (off, see runtime/cpu.py), so a max reduce or an
        elementwise max would stay scalar."""
        t = self.type_name(dt)
        if not dt.is_float or t not in BLEND_HELPERS:
            return super().max_fn(dt)
        self.extra_helpers[f"lt_select_{t}"] = BLEND_HELPERS[t]
        fname = f"lt_max_{dt.name}"
        self.extra_helpers[fname] = (f"static inline {t} {fname}({t} a, {t} b) "
                                     f"{{ return lt_select_{t}((a > b) | (a != a), a, b); }}")
        return fname

    # ---- vector values (shape (lanes,) nodes made by codegen/vectorize.py) ----
    def vector_type(self, n: Node) -> str:
        """The GCC vector type of vector node n (its helpers are added to the kernel's source); a
        bool vector is a lane mask, integers as wide as the float lanes of the host's registers."""
        lanes = register_lanes(n.shape[0])
        if not n.dtype.is_bool:
            name, source = vector_support(self.type_name(n.dtype), lanes)
            self.extra_helpers.setdefault(name, source)
            return name
        # a mask: as wide as the float lanes it selects between, and declared by their source
        mask_scalar = MASK_SCALARS[self.vector_element_size]
        float_name, source = vector_support({"int": "float", "long long": "double"}[mask_scalar], lanes)
        self.extra_helpers.setdefault(float_name, source)
        return vector_support(mask_scalar, lanes)[0]

    def value_type(self, n: Node) -> str:
        return self.vector_type(n) if n.shape else super().value_type(n)

    def prepare_nest(self, nest: LoopNest) -> None:
        super().prepare_nest(nest)
        vectors = [n for n in self.nodes if n.shape]
        floats = {n.dtype.itemsize for n in vectors if n.dtype.is_float}
        assert len(floats) <= 1, f"one nest's vectors mix float widths: {sorted(floats)}"
        self.vector_element_size = floats.pop() if floats else 4
        broadcasts = [n for n in vectors if n.op is Op.EXPAND]
        live = sum(1 for n in vectors if n.op in (Op.REDUCE_LOOP, Op.EXPAND, Op.LOAD))
        self.inline_broadcasts = live > host_vector_unit().registers
        feeds: dict[Node, int] = defaultdict(int)
        for b in broadcasts:
            feeds[b.srcs[0]] += 1
        self.broadcast_only = {n for n, count in feeds.items() if n.op is Op.LOAD and count == self.uses[n]}
        self.pinned_loads = self._reused_reduce_body_loads(vectors)

    def _reused_reduce_body_loads(self, vectors: list[Node]) -> set[Node]:
        """Whole-register vector loads inside a reduce loop (their index moves with a reduce range)
        that feed several operations: a tile's column vectors, kept in registers (_pin_to_register).
        Loads outside the reduce (a bias in the epilogue) are not pinned: held across the reduce
        loop they would take registers its accumulators need (a 6x16 AVX2 tile with a pinned bias:
        41 GFLOP/s instead of 88)."""
        ranges = {r for n in vectors if n.op is Op.REDUCE_LOOP for r in n.arg[1]}
        width = host_vector_unit().width_bytes
        return {n for n in vectors
                if n.op is Op.LOAD and len(n.srcs) == 1 and self.uses[n] > 1
                and n.shape[0] * n.dtype.itemsize == width
                and any(m in ranges for m in toposort([n.srcs[0]]))}

    def always_inline(self, n: Node) -> bool:
        """Broadcasts (and scalar loads only broadcast) are written where each FMA uses them when the
        tile's accumulators, broadcasts and vector loads outnumber the vector registers: named up
        front, a 12x32 matmul tile's 12 broadcasts beside its 24 accumulators spill (512³: 1.6 ms
        instead of 1.3); inline, GCC loads each just before its FMAs. When they fit, named is faster
        (a 9x32 conv tile: 1.42 vs 1.67 ms): the loads issue ahead of the FMAs."""
        if not self.inline_broadcasts:
            return False
        return bool(n.shape) and n.op is Op.EXPAND or n in self.broadcast_only

    def accumulator_init(self, n: Node) -> str:
        identity = super().accumulator_init(n)
        return f"{self.vector_type(n)}_broadcast({identity})" if n.shape else identity

    def fma_fn_for(self, n: Node) -> str:
        return f"{self.vector_type(n)}_fma" if n.shape else super().fma_fn_for(n)

    def unrounded_expr(self, n: Node) -> str:
        if n.op is Op.LANE:
            return f"{self.ref(n.srcs[0])}[{n.arg}]"
        if not n.shape:
            return super().unrounded_expr(n)
        vt = self.vector_type(n)
        s = [self.ref(x) for x in n.srcs]
        if n.op is Op.LOAD:
            if len(n.srcs) == 2:    # a lane mask's bits (codegen/vectorize.py _masked_load)
                return f"{vt}_load_mask(&b{n.arg}[{s[0]}], (unsigned int)({s[1]}))"
            if n.shape[0] < register_lanes(n.shape[0]):
                return f"{vt}_load_part(&b{n.arg}[{s[0]}], {n.shape[0]})"
            if n in self.pinned_loads:
                return f"{vt}_load_reg(&b{n.arg}[{s[0]}])"    # reused: one load, kept in a register
            if n in self.epilogue_loads:
                return f"{vt}_load_late(&b{n.arg}[{s[0]}])"   # loaded after the reduce, not hoisted
            return f"{vt}_load(&b{n.arg}[{s[0]}])"
        if n.op is Op.EXPAND:
            return f"{vt}_broadcast(-(int)({s[0]}))" if n.dtype.is_bool else f"{vt}_broadcast({s[0]})"
        if n.op is Op.WHERE:
            return f"{vt}_select({s[0]}, {s[1]}, {s[2]})"
        if n.op is Op.MAX:
            return f"{vt}_max({s[0]}, {s[1]})"
        return super().unrounded_expr(n)

    def render_store(self, kernel: LoopKernel, st: Store) -> str:
        if self.transpose_strides is not None:
            dst_stride, src_stride, side = self.transpose_strides
            name = f"lt_transpose{side}_b32"
            self.extra_helpers.setdefault(name, TRANSPOSE_HELPERS[side])
            return (f"{name}(&b{st.slot}[{self.ref(st.index)}], {dst_stride}ll, "
                    f"&b{st.value.arg}[{self.ref(st.value.srcs[0])}], {src_stride}ll);")
        if st.value.shape:
            target = f"&b{st.slot}[{self.ref(st.index)}]"
            lanes = st.value.shape[0]
            if lanes < register_lanes(lanes):
                return f"{self.vector_type(st.value)}_store_part({target}, {self.ref(st.value)}, {lanes});"
            return f"{self.vector_type(st.value)}_store({target}, {self.ref(st.value)});"
        return super().render_store(kernel, st)

    def narrow_to_float32(self, expr: str) -> str:
        self.extra_helpers["lt_narrow_f32"] = NARROW_HELPER
        return f"lt_narrow_f32({expr})"

    def render_nest(self, kernel: LoopKernel, nest: LoopNest) -> list[str]:
        self.nest_checks_errors = kernel.checks_errors
        self.transpose_strides: tuple[int, int, int] | None = None   # (write, read stride, tile side)
        if nest.register_transpose:
            nest = self._transpose_tile_corner(nest)
        return super().render_nest(kernel, nest)

    def _transpose_tile_corner(self, nest: LoopNest) -> LoopNest:
        """A register-transpose nest (codegen/transpose_tiles.py) without its two tile loops: its one
        store then stands for the tile's corner, which render_store writes as a call of the transpose
        helper (with the strides between the rows it reads and the rows it writes)."""
        (st,) = nest.stores
        load = st.value
        rows, cols = nest.loops[-2].var, nest.loops[-1].var   # the tile's read-contiguous, write-contiguous loops
        corner = {rows: sym.const(0), cols: sym.const(0)}
        store_terms, _ = sym._linear(st.index)
        load_terms, _ = sym._linear(load.srcs[0])
        self.transpose_strides = (store_terms[rows], load_terms[cols], nest.register_transpose)
        index, source = sym.substitute([st.index, load.srcs[0]], corner)
        corner_load = Node.make(Op.LOAD, load.dtype, (source,), load.arg, ())
        return replace(nest, loops=nest.loops[:-2], stores=(Store(st.slot, index, corner_load),),
                       register_transpose=0)

    def loop_pragma(self, nest: LoopNest, depth: int) -> str | None:
        loop = nest.loops[depth]
        if not loop.parallel:
            return None
        if self._flat_elementwise(nest):
            # Each thread's share of a lone parallel loop has a trip count GCC cannot see, and at -O2
            # it vectorizes only loops it can count; `simd` asks for vector code all the same.
            return "#pragma omp parallel for simd schedule(static)"
        return "#pragma omp parallel for schedule(static)"

    def _flat_elementwise(self, nest: LoopNest) -> bool:
        """One loop of plain stores: no reduce loops inside, no scatter, no index checks."""
        if len(nest.loops) != 1 or self.nest_checks_errors:
            return False
        return all(st.reduce_op is None and not st.replace_op and not reduce_loops(st.value)
                   for st in nest.stores)
