"""The OpenCL C dialect: `__kernel` functions over `__global` buffers, OpenCL's scalar type names
(`long` is 64-bit, there is no `long long`), overloaded math builtins, `__local` scratch memory."""
from __future__ import annotations

from lazytensor.codegen.render.gpu import GPURenderer

from lazytensor import dtypes
from lazytensor.dtypes import DType

OPENCL_TYPES = {"bool": "bool", "uint8": "uchar", "int8": "char", "int16": "short", "uint16": "ushort",
                "int32": "int", "uint32": "uint", "int64": "long", "uint64": "ulong", "float16": "float",
                "bfloat16": "float", "float32": "float", "float64": "double"}


class OpenCLRenderer(GPURenderer):
    device = "CL"
    bool_type = "bool"
    kernel_prefix = "__kernel "
    global_qualifier = "__global "
    local_qualifier = "__local "
    helper_prefix = "static inline"
    index_type = "long"

    def type_name(self, dt: DType) -> str:
        return OPENCL_TYPES[dt.name]

    def storage_type(self, dt: DType) -> str:
        if dt.is_bool:
            return "uchar"       # bool is not allowed in kernel arguments
        if dt in (dtypes.float16, dtypes.bfloat16):
            return "ushort"
        return self.type_name(dt)

    def local_type(self, dt: DType) -> str:
        return "uchar" if dt.is_bool else self.type_name(dt)

    def fma_fn(self, dt: DType) -> str:
        return "fma"   # overloaded for float and double in OpenCL C

    def math_fn(self, name: str, dt: DType) -> str:
        return name              # OpenCL's math builtins are overloaded on float and double

    def literal(self, v: float | int | bool, dt: DType) -> str:
        if dt.is_int and dt.bits == 64:
            if dt.kind == "u":
                return f"{int(v)}ul"
            if v == dtypes.min_value(dtypes.int64):
                return "(-9223372036854775807l - 1)"
            return f"{int(v)}l"
        return super().literal(v, dt)

    def bit_copy(self, dst: str, src: str, dst_type: str) -> str:
        return f"{dst} = as_{dst_type}({src});"

    def bits_to_float(self, expr: str) -> str:
        return f"as_float({expr})"

    def float_to_bits(self, expr: str) -> str:
        return f"as_uint({expr})"

    def global_id(self) -> str:
        return "(long)get_global_id(0)"

    def group_id(self) -> str:
        return "(long)get_group_id(0)"

    def local_id(self) -> str:
        return "(long)get_local_id(0)"

    def barrier(self) -> str:
        return "barrier(CLK_LOCAL_MEM_FENCE)"

    def preamble_for(self, body: str) -> list[str]:
        # no fused multiply-add contraction: a*b+c rounds twice, as on the CPU and in PyTorch
        lines = ["#pragma OPENCL FP_CONTRACT OFF"]
        if "double" in body:
            lines.insert(0, "#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
        return lines
