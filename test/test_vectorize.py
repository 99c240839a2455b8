"""codegen/vectorize.py: register tiles regrouped into explicit vectors give the scalar tiles' bits.

Each case schedules a real computation, optimizes its reduce kernel with and without the pass and
runs both variants on the same inputs (beam's timer: compile, run, read the output back).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn.functional as F
from lazytensor.beam import _render, _Timer
from lazytensor.codegen.cpu_target import host_vector_unit
from lazytensor.codegen.lower import lower_kernel
from lazytensor.codegen.opt import HEURISTIC, optimize
from lazytensor.codegen.vectorize import vector_lanes
from lazytensor.nn import conv as conv_module

SCALAR = replace(HEURISTIC, vectorize=False)


def _reduce_kernel(out: lt.Tensor):
    """The last scheduled kernel of out (the reduce), lowered, unoptimized."""
    *_, item = out.schedule()
    return lower_kernel(item.ast)


def _both_variants(out: lt.Tensor) -> tuple[np.ndarray, np.ndarray, str]:
    """(vectorized output, scalar output, vectorized source) of out's reduce kernel."""
    kernel = _reduce_kernel(out)
    timer = _Timer(kernel)
    vectorized = optimize(kernel, HEURISTIC)
    _, fast = timer.run(vectorized)
    _, slow = timer.run(optimize(kernel, SCALAR))
    assert fast is not None and slow is not None
    return fast, slow, _render(vectorized)


MATMULS = [(1, 1, 16), (7, 5, 32), (12, 8, 16), (127, 33, 48), (64, 64, 64), (8, 1023, 16), (130, 300, 32),
           (50, 17, 64), (1023, 260, 48)]


@pytest.mark.parametrize("m,k,n", MATMULS)
@pytest.mark.parametrize("layout", ["plain", "a_transposed", "strided"])
def test_vectorized_matmul_tiles_are_bit_identical(m, k, n, layout):
    rng = np.random.default_rng(m + k + n)
    a = lt.tensor(rng.standard_normal((m, 2 * k) if layout == "strided" else (m, k)).astype(np.float32))
    b = lt.tensor(rng.standard_normal((k, n)).astype(np.float32))
    if layout == "a_transposed":
        a = lt.tensor(np.ascontiguousarray(a.numpy().T)).T
    if layout == "strided":
        a = a[:, ::2]
    fast, slow, _ = _both_variants(a @ b)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorized_tile_with_bias_epilogue_is_bit_identical(dtype):
    rng = np.random.default_rng(1)
    x = lt.tensor(rng.standard_normal((37, 40)).astype(dtype))
    w = lt.tensor(rng.standard_normal((64, 40)).astype(dtype))
    bias = lt.tensor(rng.standard_normal(64).astype(dtype))
    out = F.linear(x, w, bias) * 0.5
    fast, slow, source = _both_variants(out)
    np.testing.assert_array_equal(fast, slow)
    lanes = vector_lanes(lt.float32 if dtype == np.float32 else lt.float64)
    if lanes >= 2:
        assert f"x{lanes}_fma(" in source
    want = (x.numpy() @ w.numpy().T + bias.numpy()) * 0.5
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-4)


EPILOGUES = {
    "relu": lambda t: t.relu(),
    "leaky_relu": lambda t: F.leaky_relu(t, 0.1),
    "clamp": lambda t: t.clamp(-0.5, 0.5),
    "maximum": lambda t: lt.maximum(t, t * 0.5),
    "where": lambda t: lt.where(t > 0.25, t * 2, -t),
    "tanh": lambda t: t.tanh(),          # does not pack: the accumulators' lanes feed scalar code
    "gelu": lambda t: F.gelu(t),
}


@pytest.mark.parametrize("name", list(EPILOGUES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorized_tiles_with_activation_epilogues_are_bit_identical(name, dtype):
    rng = np.random.default_rng(7)
    x = lt.tensor(rng.standard_normal((29, 48)).astype(dtype))
    w = lt.tensor(rng.standard_normal((64, 48)).astype(dtype))
    bias = lt.tensor(rng.standard_normal(64).astype(dtype))
    out = EPILOGUES[name](F.linear(x, w, bias))
    fast, slow, source = _both_variants(out)
    np.testing.assert_array_equal(fast, slow)
    lanes = vector_lanes(lt.float32 if dtype == np.float32 else lt.float64)
    if lanes >= 2:
        assert f"x{lanes}_fma(" in source                  # the FMAs are vector code either way
    torch = pytest.importorskip("torch")
    tx, tw, tb = (torch.tensor(t.numpy()) for t in (x, w, bias))
    reference = {"relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.1),
                 "clamp": lambda t: t.clamp(-0.5, 0.5), "maximum": lambda t: torch.maximum(t, t * 0.5),
                 "where": lambda t: torch.where(t > 0.25, t * 2, -t), "tanh": torch.tanh,
                 "gelu": torch.nn.functional.gelu}[name]
    want = reference(torch.nn.functional.linear(tx, tw, tb)).numpy()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-5)


def test_nan_propagates_through_a_vectorized_max_epilogue():
    x = np.ones((4, 16), np.float32)
    x[1, 3] = np.nan
    w = np.eye(16, dtype=np.float32)
    out = lt.maximum(lt.tensor(x) @ lt.tensor(w), lt.zeros(4, 16)).numpy()
    assert np.isnan(out[1]).all() and not np.isnan(np.delete(out, 1, 0)).any()   # nan * 0 is nan
    np.testing.assert_array_equal(out, np.maximum(x @ w, 0))


CONVS = [(2, 3, 32, 64), (2, 32, 64, 16), (1, 3, 5, 7), (2, 16, 32, 8), (3, 4, 12, 33), (1, 8, 16, 1)]


@pytest.mark.parametrize("n,cin,cout,hw", CONVS)
@pytest.mark.parametrize("layout", ["direct", "auto"])
def test_vectorized_conv_tiles_are_bit_identical(n, cin, cout, hw, layout, monkeypatch):
    if layout == "direct":
        monkeypatch.setattr(conv_module, "CHANNELS_LAST_MIN_CIN", 1 << 30)
    rng = np.random.default_rng(n * cin * cout * hw)
    x = lt.tensor(rng.standard_normal((n, cin, hw, hw)).astype(np.float32))
    w = lt.tensor(rng.standard_normal((cout, cin, 3, 3)).astype(np.float32))
    out = F.conv2d(x, w, padding=1)
    fast, slow, _ = _both_variants(out)
    np.testing.assert_array_equal(fast, slow)
    torch = pytest.importorskip("torch")
    want = torch.nn.functional.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()), padding=1).numpy()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


def test_direct_conv_over_16_wide_images_tiles_two_rows_of_vectors(monkeypatch):
    """A 16-wide image row is one AVX-512 vector: the tile takes 2 output rows, so each broadcast
    weight feeds two vector FMAs (a 32-float tile row, as a matmul's)."""
    if host_vector_unit().width_bytes != 64:
        pytest.skip("the tile shape is specific to AVX-512")
    monkeypatch.setattr(conv_module, "CHANNELS_LAST_MIN_CIN", 1 << 30)
    x, w = lt.randn(2, 8, 16, 16).realize(), lt.randn(32, 8, 3, 3).realize()
    notes = optimize(_reduce_kernel(F.conv2d(x, w, padding=1))).notes
    assert any(note.startswith("upcast") and "by 2" in note for note in notes), notes
    assert any(note.startswith("vectorize") for note in notes), notes


PARTIAL = [(128, 512, 10), (9, 33, 24), (5, 7, 3), (20, 64, 10), (13, 40, 40), (1, 5, 10)]


@pytest.mark.parametrize("m,k,n", PARTIAL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_runs_shorter_than_a_register_are_bit_identical(m, k, n, dtype):
    """Output rows narrower than a vector register (a 10-class output layer) or ending in a partial
    register (24 = 16 + 8) pack as vectors whose loads and stores touch only the run's elements."""
    rng = np.random.default_rng(m * n + k)
    a = lt.tensor(rng.standard_normal((m, k)).astype(dtype))
    b = lt.tensor(rng.standard_normal((k, n)).astype(dtype))
    fast, slow, source = _both_variants(a @ b)
    np.testing.assert_array_equal(fast, slow)
    _assert_within_dot_error_bound((a @ b).numpy(), a.numpy(), b.numpy())
    lanes = vector_lanes(lt.dtypes.float32 if dtype == np.float32 else lt.dtypes.float64)
    if n % lanes and n > 1:
        assert "_load_part(" in source and "_store_part(" in source


def _assert_within_dot_error_bound(got: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """got is a @ b to within the rounding error bound of a length-k dot product, k·u·(|a| @ |b|),
    against the float64 product. (NumPy's own float32 result is no closer: its BLAS sums in another
    order, so comparing with it at rtol=1e-6 failed on an AVX2 host.)"""
    k = a.shape[-1]
    unit_roundoff = np.finfo(got.dtype).eps / 2
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = k * unit_roundoff * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert np.all(np.abs(got - exact) <= bound), np.max(np.abs(got - exact) - bound)


def test_partial_store_leaves_neighbours_alone():
    """A 10-wide output written by 16-lane vectors: the elements after each run stay as they were
    (the output of a slice of a bigger buffer would otherwise be overwritten)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((24, 64)).astype(np.float32)
    b = rng.standard_normal((64, 10)).astype(np.float32)
    out = lt.tensor(np.full((24, 12), 7.0, np.float32))
    out[:, 1:11] = lt.tensor(a) @ lt.tensor(b)
    got = out.numpy()
    np.testing.assert_allclose(got[:, 1:11], a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[:, [0, 11]], 7.0)


@pytest.mark.parametrize("lanes,per_row", [(16, [10]), (8, [8, 2]), (4, [4, 4, 2])])
def test_run_length_follows_the_tile_row_not_the_register(lanes, per_row):
    """A tile 10 outputs wide stores its rows back to back; runs are cut at the rows: one run of 10
    with 16-lane registers, 8 + 2 with 8-lane ones (runs of 8 across the rows packed nothing)."""
    from lazytensor import dtypes, symbolic as sym
    from lazytensor.codegen.kernel import Store
    from lazytensor.codegen.vectorize import _Packer, _runs
    from lazytensor.graph import Node
    from lazytensor.ops import Op
    i = sym.loop_var("i", 8)

    def load(slot, index):
        return Node.make(Op.LOAD, dtypes.float32, (index,), slot)

    stores = []
    for row in range(4):
        weight = load(2, sym.add(sym.mul(i, sym.const(4)), sym.const(row)))
        for col in range(10):
            value = Node.make(Op.MUL, dtypes.float32, (weight, load(1, sym.const(col))))
            stores.append(Store(0, sym.add(sym.mul(i, sym.const(40)), sym.const(10 * row + col)), value))
    runs, rest = _runs(_Packer(dtypes.float32, frozenset()), tuple(stores), lanes)
    assert [len(r) for r in runs] == per_row * 4 and not rest


def test_packer_matches_consecutive_loads_and_shared_values_only():
    from lazytensor import dtypes, symbolic as sym
    from lazytensor.codegen.vectorize import _Packer
    from lazytensor.graph import Node
    from lazytensor.ops import Op
    i = sym.loop_var("i", 64)
    base = sym.mul(i, sym.const(16))

    def load(slot, offset):
        return Node.make(Op.LOAD, dtypes.float32, (sym.add(base, sym.const(offset)),), slot)

    shared = load(2, 100)
    packer = _Packer(dtypes.float32, frozenset())
    adjacent = packer.pack(tuple(Node.make(Op.MUL, dtypes.float32, (load(1, k), shared)) for k in range(4)))
    assert adjacent is not None and adjacent.shape == (4,)
    vector_load, broadcast = adjacent.srcs
    assert vector_load.op is Op.LOAD and vector_load.shape == (4,) and vector_load.srcs[0] is load(1, 0).srcs[0]
    assert broadcast.op is Op.EXPAND and broadcast.srcs[0] is shared
    assert packer.pack(tuple(load(1, 2 * k) for k in range(4))) is None              # strided: a gather
    assert packer.pack(tuple(load(1, k) for k in (1, 0, 2, 3))) is None              # out of lane order
    mixed = (Node.make(Op.ADD, dtypes.float32, (load(1, 0), shared)),) + tuple(
        Node.make(Op.MUL, dtypes.float32, (load(1, k), shared)) for k in range(1, 4))
    assert packer.pack(mixed) is None                                                # different ops


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padded_reads_pack_as_masked_vector_loads(dtype):
    """A convolution that reads its zero padding through gates (no padded copy), with the gated
    loop left whole (as when peeling would split it into too many pieces): the border lanes of each
    row load under a lane mask and give the scalar tile's bits (the timer's random inputs); the
    pipeline's own result is torch's conv."""
    import torch
    from lazytensor.codegen import opt
    rng = np.random.default_rng(3)
    x_np = rng.standard_normal((2, 3, 5, 2 * vector_lanes(lt.dtypes.float32))).astype(dtype)
    w_np = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    x, w = lt.tensor(x_np), lt.tensor(w_np)
    windows = F.pad(x, (1, 1, 1, 1)).unfold(2, 3, 1).unfold(3, 3, 1)          # (2, 3, 5, W, 3, 3)
    out = (windows[:, None] * w[None, :, :, None, None]).sum((2, 5, 6))        # (2, 4, 5, W)
    kernel = _reduce_kernel(out)

    def without_peeling(choices):
        k = kernel
        for p in opt.PASSES:
            if p is not opt.peel_gated_borders:
                k = p(k, choices)
        return k
    timer = _Timer(kernel)
    vectorized = without_peeling(HEURISTIC)
    _, fast = timer.run(vectorized)
    _, slow = timer.run(without_peeling(SCALAR))
    assert "_load_mask(" in _render(vectorized)
    np.testing.assert_array_equal(fast, slow)
    want = torch.nn.functional.conv2d(torch.tensor(x_np), torch.tensor(w_np), padding=1).numpy()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-5)


def test_reused_column_vectors_are_loaded_once_into_registers():
    """A matmul tile's column vectors each feed one FMA per tile row: they are loaded through the
    pinning helper (one load, kept in a register), while the broadcast row values are not vectors.
    The pinned variant gives the same bits as the scalar tile."""
    if host_vector_unit().width_bytes < 32:
        pytest.skip("needs an AVX or AVX-512 host")
    a, b = lt.randn(48, 64).realize(), lt.randn(64, 64).realize()
    fast, slow, source = _both_variants(a @ b)
    np.testing.assert_array_equal(fast, slow)
    assert "_load_reg(&b" in source   # a call in the kernel, not only the helper's definition
    assert "__asm__" in source        # the helper pins the value


@pytest.mark.parametrize("scalar,lanes,macro,intrinsic", [("float", 16, "__AVX512F__", "_mm512_fmadd_ps"),
                                                          ("double", 8, "__AVX512F__", "_mm512_fmadd_pd"),
                                                          ("float", 8, "__FMA__", "_mm256_fmadd_ps"),
                                                          ("double", 4, "__FMA__", "_mm256_fmadd_pd")])
def test_whole_register_fma_is_one_intrinsic_with_a_per_lane_fallback(scalar, lanes, macro, intrinsic):
    from lazytensor.codegen.render.c import vector_support
    _, source = vector_support(scalar, lanes)
    fma = source[source.index("_fma("):]
    assert f"#if defined({macro})" in fma and intrinsic in fma and "#else" in fma
    assert "__builtin_fma" in fma     # the fallback, for a compiler not targeting that unit


def test_short_conv_taps_stay_unrolled_where_the_fma_is_one_instruction(monkeypatch):
    """A 3x3 conv's tap loops are unrolled (a GCC pragma) when its vector FMA is one intrinsic: on
    AVX-512, and on AVX2 with FMA (there they were left rolled: 61 -> 89 GFLOP/s on one Zen 3 core
    for N32 32->64 16x16 with 6-row tiles)."""
    from lazytensor.codegen.cpu_target import host_has_fma
    unit = host_vector_unit()
    if not (unit.width_bytes == 64 or (unit.width_bytes == 32 and host_has_fma())):
        pytest.skip("needs an AVX-512 host or an AVX2 host with FMA")
    monkeypatch.setattr(conv_module, "CHANNELS_LAST_MIN_CIN", 1 << 30)
    x, w = lt.randn(2, 8, 16, 16).realize(), lt.randn(32, 8, 3, 3).realize()
    kernel = optimize(_reduce_kernel(F.conv2d(x, w, padding=1)))
    assert any(note.startswith("unroll") for note in kernel.notes), kernel.notes
    assert kernel.unrolled_ranges
    assert "unroll" in _render(kernel)


def test_bias_vectors_are_loaded_after_the_reduce_and_not_pinned():
    """A matmul tile's bias (an epilogue load) is loaded after the reduce loop through the helper the
    compiler may not hoist, so it does not hold registers across the reduce; only the column vectors
    inside the reduce are pinned. Same bits as the scalar tile, and the bias is really added."""
    if host_vector_unit().width_bytes < 32:
        pytest.skip("needs an AVX or AVX-512 host")
    rng = np.random.default_rng(5)
    x = lt.tensor(rng.standard_normal((4, 24, 40)).astype(np.float32))
    w = lt.tensor(rng.standard_normal((64, 40)).astype(np.float32))
    bias = lt.tensor(rng.standard_normal(64).astype(np.float32))
    with lt.no_grad():
        out = F.linear(x, w, bias)
        fast, slow, source = _both_variants(out)
    np.testing.assert_array_equal(fast, slow)
    assert "_load_late(&b" in source
    kernel_text = source[source.index("acc"):]
    first_reduce = kernel_text.index("for (long long r")
    assert "_load_late(&b" not in kernel_text[:first_reduce]     # not above the first reduce loop
    want = x.numpy() @ w.numpy().T + bias.numpy()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-5)


def test_integer_selects_are_branch_free_so_elementwise_loops_vectorize():
    """An integer where in an elementwise kernel (exp's NaN guard on its exponent) renders as a mask
    blend, not `c ? a : b`: GCC vectorizes no loop with a branch (if-conversion is off)."""
    x = lt.tensor(np.arange(-8, 8, dtype=np.int32))
    out = lt.where(x > 0, x, x * 3)
    (item,) = out.schedule()
    source = _render(optimize(lower_kernel(item.ast), HEURISTIC))
    assert "lt_select_int32(" in source
    assert " ? " not in source
    np.testing.assert_array_equal(out.numpy(), np.where(np.arange(-8, 8) > 0, np.arange(-8, 8), np.arange(-8, 8) * 3))


@pytest.mark.parametrize("n", [4096, 1 << 20])   # a serial loop, and a parallel one (its body outlined)
def test_invariants_of_a_one_loop_kernel_are_computed_before_the_loop(n):
    """A one-loop kernel's loop invariants (Adam's step size: a float64 scalar narrowed to float32
    through an asm barrier) are computed before the loop, and passed to the outlined body of a
    parallel loop: inside the loop the barrier kept the whole loop scalar (4-5x slower)."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal(n).astype(np.float32)
    x = lt.tensor(a)
    scale = lt.tensor(np.array(0.3, dtype=np.float64))
    out = x / (x * x + 1).sqrt() * scale.float()
    (item,) = out.schedule()
    kernel = optimize(lower_kernel(item.ast), HEURISTIC)
    source = _render(kernel)
    kernel_function = source[source.index(f"void {kernel.name}("):]   # not the helpers above it
    assert kernel_function.index("lt_narrow_f32(") < kernel_function.index("for (")
    want = a / np.sqrt(a * a + np.float32(1)) * np.float32(0.3)
    np.testing.assert_allclose(out.numpy(), want, rtol=2e-6)
