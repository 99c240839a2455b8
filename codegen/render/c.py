"""The C dialect: plain C99 for the system compiler, OpenMP pragmas on parallel loops."""
from __future__ import annotations

from lazytensor.codegen.kernel import LoopNest
from lazytensor.codegen.render.cstyle import CStyleRenderer


class CRenderer(CStyleRenderer):
    device = "CPU"

    def loop_pragma(self, nest: LoopNest, depth: int) -> str | None:
        loop = nest.loops[depth]
        if not loop.parallel:
            return None
        return "#pragma omp parallel for schedule(static)"
