"""The C dialect: plain C99 for the system compiler, OpenMP pragmas on parallel loops."""
from __future__ import annotations

from lazytensor.codegen.kernel import LoopKernel, LoopNest, reduce_loops
from lazytensor.dtypes import DType
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


class CRenderer(CStyleRenderer):
    device = "CPU"
    outline_parallel_body = True

    def select(self, cond: str, a: str, b: str, dt: DType) -> str:
        t = self.type_name(dt)
        if t not in BLEND_HELPERS:
            return super().select(cond, a, b, dt)
        self.extra_helpers[f"lt_select_{t}"] = BLEND_HELPERS[t]
        return f"lt_select_{t}({cond}, {a}, {b})"

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

    def narrow_to_float32(self, expr: str) -> str:
        self.extra_helpers["lt_narrow_f32"] = NARROW_HELPER
        return f"lt_narrow_f32({expr})"

    def render_nest(self, kernel: LoopKernel, nest: LoopNest) -> list[str]:
        self.nest_checks_errors = kernel.checks_errors
        return super().render_nest(kernel, nest)

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
