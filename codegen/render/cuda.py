"""The CUDA C dialect: `extern "C" __global__` functions, `__device__` helpers, `__shared__`
scratch memory, the thread index from blockIdx/blockDim/threadIdx. Compiles with nvcc or NVRTC
(no #include: NAN and INFINITY are spelled from their bits)."""
from __future__ import annotations

from lazytensor.codegen.render.gpu import GPURenderer

from lazytensor.dtypes import DType

CUDA_PREAMBLE = """#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif"""


class CUDARenderer(GPURenderer):
    device = "CUDA"
    restrict = "__restrict__"
    bool_type = "bool"
    kernel_prefix = 'extern "C" __global__ '
    global_qualifier = ""
    local_qualifier = "__shared__ "
    helper_prefix = "static __device__ inline"

    def bit_copy(self, dst: str, src: str, dst_type: str) -> str:
        return f"memcpy(&{dst}, &{src}, sizeof({dst}));"

    def bits_to_float(self, expr: str) -> str:
        return f"__uint_as_float({expr})"

    def float_to_bits(self, expr: str) -> str:
        return f"__float_as_uint({expr})"

    def global_id(self) -> str:
        return "((long long)blockIdx.x * blockDim.x + threadIdx.x)"

    def group_id(self) -> str:
        return "(long long)blockIdx.x"

    def local_id(self) -> str:
        return "(long long)threadIdx.x"

    def barrier(self) -> str:
        return "__syncthreads()"

    def local_type(self, dt: DType) -> str:
        return self.type_name(dt)

    def preamble_for(self, body: str) -> list[str]:
        return [CUDA_PREAMBLE]
