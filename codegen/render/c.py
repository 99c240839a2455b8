"""The C dialect: plain C99 for the system compiler, OpenMP pragmas on parallel loops."""
from __future__ import annotations

from lazytensor.codegen.kernel import LoopNest
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


class CRenderer(CStyleRenderer):
    device = "CPU"
    outline_parallel_body = True

    def narrow_to_float32(self, expr: str) -> str:
        self.extra_helpers["lt_narrow_f32"] = NARROW_HELPER
        return f"lt_narrow_f32({expr})"

    def loop_pragma(self, nest: LoopNest, depth: int) -> str | None:
        loop = nest.loops[depth]
        if not loop.parallel:
            return None
        return "#pragma omp parallel for schedule(static)"
