"""Loop optimization passes keep results exact: optimized == unoptimized (NOOPT) == NumPy.

Shapes include 1, 7, 127 and sizes the register-tiling pass splits (multiples of 16 and 8),
with non-contiguous (transposed, strided) inputs. No test here times anything."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import lazytensor as lt
from lazytensor import config
from lazytensor.codegen.lower import lower_kernel
from lazytensor.codegen.cpu_target import VectorUnit, host_vector_unit, tile_rows
from lazytensor.beam import _Timer
from lazytensor.codegen import opt
from lazytensor.codegen.opt import _dividing_row_count, choose_upcasts, optimize


def _both(fn, *arrays):
    """fn evaluated with optimizations on and off, on fresh tensors each time."""
    results = []
    for noopt in (False, True):
        saved = config.NOOPT
        config.NOOPT = noopt
        try:
            results.append(fn(*[lt.tensor(a) for a in arrays]).numpy())
        finally:
            config.NOOPT = saved
    return results


MATMUL_SHAPES = [(1, 1, 1), (7, 5, 3), (16, 8, 16), (32, 7, 48), (127, 33, 16), (64, 64, 64), (8, 1023, 16),
                 (24, 16, 40), (1, 64, 128),
                 # packed right operand, row tiles with a peeled tail, blocked rows with leftover tiles
                 (127, 64, 48), (130, 300, 32), (50, 17, 64), (1023, 260, 16 * 3)]


@pytest.mark.parametrize("m,k,n", MATMUL_SHAPES)
@pytest.mark.parametrize("layout", ["plain", "a_transposed", "b_transposed", "strided"])
def test_matmul_optimized_matches_unoptimized_and_numpy(m, k, n, layout):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    if layout == "a_transposed":
        fn = lambda x, y: x.T @ y     # noqa: E731
        a = np.ascontiguousarray(a.T)
        want = a.T @ b
    elif layout == "b_transposed":
        fn = lambda x, y: x @ y.T     # noqa: E731
        b = np.ascontiguousarray(b.T)
        want = a @ b.T
    elif layout == "strided":
        fn = lambda x, y: x[:, ::2] @ y[::2]     # noqa: E731
        a, b = np.concatenate([a, a], 1), np.concatenate([b, b], 0)
        want = a[:, ::2] @ b[::2]
    else:
        fn = lambda x, y: x @ y     # noqa: E731
        want = a @ b
    fast, slow = _both(fn, a, b)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fast, want, rtol=1e-4, atol=1e-3)


REDUCE_CASES = [
    ("sum_axis0", lambda x: x.sum(0), lambda x: x.sum(0)),
    ("max_axis0", lambda x: x.max(0).values, lambda x: x.max(0)),
    ("sum_axis1", lambda x: x.sum(1), lambda x: x.sum(1)),
    ("mean_keepdim", lambda x: x.mean(0, keepdim=True), lambda x: x.mean(0, keepdims=True)),
    ("sum_then_scale", lambda x: (x * 2).sum(0) + 1, lambda x: (x * 2).sum(0) + 1),
    ("int_prod", lambda x: (x.int() % 3 + 1).prod(0), lambda x: (x.astype(np.int32) % 3 + 1).prod(0)),
]


@pytest.mark.parametrize("shape", [(1, 16), (7, 32), (127, 16), (3, 1023), (16, 48)])
@pytest.mark.parametrize("name,ours,numpy_fn", REDUCE_CASES, ids=[c[0] for c in REDUCE_CASES])
def test_reductions_optimized_match(name, ours, numpy_fn, shape):
    x = np.random.default_rng(1).uniform(-2, 2, shape).astype(np.float32)
    fast, slow = _both(ours, x)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast, numpy_fn(x), rtol=1e-4, atol=1e-4)


def test_batched_matmul_and_conv_like_window_reduce():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 16, 8)).astype(np.float32)
    b = rng.standard_normal((3, 8, 32)).astype(np.float32)
    fast, slow = _both(lambda x, y: x @ y, a, b)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast, a @ b, rtol=1e-4, atol=1e-4)
    # a 1-D "convolution" written with movement ops: out[c, i] = sum_k x[i + k] * w[c, k]
    x = rng.standard_normal(34).astype(np.float32)
    w = rng.standard_normal((8, 3)).astype(np.float32)

    def conv(xt, wt):
        windows = lt.stack([xt[k:k + 32] for k in range(3)], 0)      # (3, 32)
        return (wt.unsqueeze(2) * windows.unsqueeze(0)).sum(1)       # (8, 32)
    fast, slow = _both(conv, x, w)
    want = np.stack([sum(w[c, k] * x[k:k + 32] for k in range(3)) for c in range(8)])
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast, want, rtol=1e-4, atol=1e-4)


def test_upcast_choice_for_matmul_tiles_both_axes():
    a, b = lt.randn(64, 32).realize(), lt.randn(32, 48).realize().requires_grad_()   # packed in the graph
    *packing, item = (a @ b).schedule()
    assert len(packing) == 1                      # the right operand is packed into 16-column panels
    kernel = lower_kernel(item.ast)               # loops (64 rows, 3 panels, 16 columns)
    unit = host_vector_unit()
    rows = _dividing_row_count(64, tile_rows(16 * 4, unit), unit)  # AVX-512: 12 rows' worth, 8 divide 64
    assert dict(choose_upcasts(kernel.nests[0], unit)) == {2: 16, 0: rows}
    assert dict(choose_upcasts(kernel.nests[0])) == {2: 16, 0: 8}     # no vector unit: GPU tiles
    optimized = optimize(kernel)
    assert any("upcast" in note for note in optimized.notes)
    covered = sum(_stored_lanes(nest) * int(np.prod([loop.size for loop in nest.loops])) for nest in optimized.nests)
    assert covered == 64 * 48                     # every output element stored exactly once
    assert _stored_lanes(optimized.nests[0]) == 16 * rows


def _stored_lanes(nest) -> int:
    """Elements a nest's stores write per iteration (a vector store writes its lanes)."""
    return sum(st.value.shape[0] if st.value.shape else 1 for st in nest.stores)


@pytest.mark.parametrize("unit,rows", [(VectorUnit(32, 16), 6), (VectorUnit(64, 32), 12), (VectorUnit(16, 16), 3)])
def test_tile_rows_fit_the_register_file(unit, rows):
    assert tile_rows(64, unit) == rows            # a 16-float row is 2 AVX2 registers, 1 AVX-512, 4 SSE


@pytest.mark.parametrize("unit,row_bytes,rows", [(VectorUnit(32, 16), 64, 6), (VectorUnit(64, 32), 128, 12),
                                                 (VectorUnit(16, 32), 64, 7)])
def test_tile_row_is_two_vectors_and_at_least_a_cache_line(unit, row_bytes, rows):
    from lazytensor.codegen.cpu_target import tile_row_bytes
    assert tile_row_bytes(unit) == row_bytes
    assert tile_rows(row_bytes, unit) == rows     # AVX-512: 12 rows of 2 registers (24 accumulators)


def test_packed_panel_width_prefers_a_tile_row_on_the_cpu():
    from lazytensor.codegen.cpu_target import tile_row_bytes
    from lazytensor.tensor_linalg import packed_panel_width
    wide = tile_row_bytes() // 4
    assert packed_panel_width(lt.float32, 4 * wide, "CPU") == wide
    assert packed_panel_width(lt.float32, 48, "CL") == 16         # off the CPU: one cache line
    assert packed_panel_width(lt.float32, 16 * 3, "CPU") == (48 if wide == 48 else 16)
    assert packed_panel_width(lt.float32, 10, "CPU") == 0
    assert packed_panel_width(lt.float64, 8, "CL") == 8


@pytest.mark.parametrize("m", [96 * 5 + 8, 12 * 9, 200])
def test_blocked_matmul_shares_block_column_pairs_between_threads(m):
    a, b = lt.randn(m, 300).realize(), lt.randn(300, 64).realize()
    item = (a @ b).schedule()[-1]
    kernel = optimize(lower_kernel(item.ast))
    blocked = [note for note in kernel.notes if note.startswith("block")]
    if blocked:
        first = kernel.nests[0]
        assert len(first.loops) == 2 and first.loops[0].parallel   # (block, column) pairs, then rows
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("size,lanes", [(10, 6), (64, 6), (7, 3), (130, 8)])
def test_upcast_with_tail_covers_every_index_once(size, lanes):
    from lazytensor.codegen.opt import upcast_with_tail
    x = lt.randn(size, 40).realize()
    w = lt.randn(40, 32).realize()
    *_, item = (x @ w).schedule()
    nest = lower_kernel(item.ast).nests[0]
    parts = upcast_with_tail(nest, 0, lanes)
    assert len(parts) == (1 if size % lanes == 0 else 2)
    stores = sum(len(p.stores) * int(np.prod([loop.size for loop in p.loops])) for p in parts)
    assert stores == int(np.prod([loop.size for loop in nest.loops]))


def test_elementwise_kernels_are_not_upcast():
    x = lt.randn(64, 64).realize()
    (item,) = (x.exp() + 1).schedule()
    assert choose_upcasts(lower_kernel(item.ast).nests[0]) == []


def test_gated_window_reduce_survives_the_c_compiler():
    """A padded sliding-window sum (gated loads in a short reduce loop, upcast lanes) that GCC 12
    miscompiles with -O2 -fvect-cost-model=cheap: keeps our compiler flags honest."""
    x = np.arange(40, dtype=np.float32).reshape(2, 5, 4)
    got = lt.tensor(x).movedim(1, -1).pad([1, 1]).unfold(2, 3, 1).sum(-1).numpy()
    padded = np.pad(np.moveaxis(x, 1, -1), ((0, 0), (0, 0), (1, 1)))
    want = padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("m,k,n", [(64, 256, 32), (24, 300, 48), (128, 512, 16)])
def test_blocked_long_reductions_match(m, k, n):
    """Shapes where block_row_loop splits the row loop (reduce length >= BLOCK_MIN_REDUCE)."""
    rng = np.random.default_rng(k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    fast, slow = _both(lambda x, y: x @ y, a, b)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fast, a @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("l2,expect_big", [(None, False), (8 << 20, False), (16 << 10, True)])
def test_blocks_grow_when_the_rows_and_panel_outgrow_l2(l2, expect_big, monkeypatch):
    """cache_block_rows: a block of BLOCK_ROWS row tiles whose rows and shared column panel take more
    than half of L2 becomes a block of about BIG_BLOCK_ROWS tiles (fewer passes of each panel into
    L2); unknown L2 (None) or enough room keeps BLOCK_ROWS. The result stays right either way."""
    monkeypatch.setattr(opt, "host_l2_bytes", lambda: l2)
    m, k, n = 6 * 200 + 5, 300, 32      # 200 row tiles of a 6-row tile (or more rows), and a tail
    rng = np.random.default_rng(l2 or 1)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    *_, item = (lt.tensor(a) @ lt.tensor(b)).schedule()
    kernel = optimize(lower_kernel(item.ast))
    (note,) = [note for note in kernel.notes if note.startswith("block ")]
    block = int(note.split(" by ")[1].split()[0])
    assert (block > opt.BLOCK_ROWS) is expect_big, note
    if expect_big:
        assert block <= opt.BIG_BLOCK_ROWS
    plain = lower_kernel(item.ast).nests[0]
    # before tiling, each reduce step reads one element of the row and one of the column
    assert opt.streamed_bytes_per_step(plain, plain.loops[0].var) == (4, 4)
    timer = _Timer(kernel)
    _, got = timer.run(kernel)
    _, want = timer.run(optimize(lower_kernel(item.ast), replace(opt.HEURISTIC, block_rows=0)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_long_matmul_is_blocked():
    a, b = lt.randn(128, 512).realize(), lt.randn(512, 64).realize()
    *_, item = (a @ b).schedule()
    notes = optimize(lower_kernel(item.ast)).notes
    assert any(note.startswith("block ") for note in notes), notes


@pytest.mark.parametrize("k", [16, 17, 127, 1023])
def test_register_tile_reduce_loop_is_unrolled_with_identical_results(k):
    """unroll_tile_reduce_loops: a vectorized matmul tile's reduce loop gets the compiler's unroll
    pragma (K not a multiple of the factor included); each accumulator still adds its products in the
    same order, so the result is bit for bit the one of the rolled loop."""
    rng = np.random.default_rng(k)
    a = rng.standard_normal((50, k)).astype(np.float32)
    b = rng.standard_normal((k, 48)).astype(np.float32)
    *_, item = (lt.tensor(a) @ lt.tensor(b)).schedule()
    unrolled = optimize(lower_kernel(item.ast))
    rolled = optimize(lower_kernel(item.ast), replace(opt.HEURISTIC, tile_unroll=1))
    if not unrolled.nests or host_vector_unit() is None:
        pytest.skip("no vector unit: the tiles are not vectorized")
    assert f"unroll r0 ({k}) by {opt.HEURISTIC.tile_unroll}" in unrolled.notes, unrolled.notes
    assert not rolled.partly_unrolled
    from lazytensor.beam import _render
    assert f"#pragma GCC unroll {opt.HEURISTIC.tile_unroll}" in _render(unrolled)
    timer = _Timer(unrolled)
    _, got = timer.run(unrolled)
    _, want = timer.run(rolled)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose((lt.tensor(a) @ lt.tensor(b)).numpy(), a @ b, rtol=1e-4, atol=1e-4)


def test_tile_unroll_leaves_short_reduces_and_whole_unrolled_windows_alone():
    """A reduce shorter than TILE_UNROLL_MIN_STEPS and a 3x3 convolution (its kh, kw ranges unrolled
    whole, the channel loop not innermost) get no partial unroll."""
    short = (lt.randn(64, 8).realize() @ lt.randn(8, 64).realize()).schedule()[-1]
    assert not optimize(lower_kernel(short.ast)).partly_unrolled
    x, w = lt.randn(2, 16, 12, 12).realize(), lt.randn(32, 16, 3, 3).realize()
    for item in lt.nn.functional.conv2d(x, w, padding=1).schedule():
        if item.kind == "kernel":
            assert not optimize(lower_kernel(item.ast)).partly_unrolled


# ---- packing the right operand of x @ w.T; vector selects and lone parallel loops (C renderer) ----

@pytest.mark.parametrize("m", [1, 15, 16, 17, 127])
def test_matmul_with_transposed_right_operand_packs_it_and_stays_exact(m):
    from lazytensor.tensor_linalg import PACK_MIN_ROWS
    rng = np.random.default_rng(m)
    x = rng.standard_normal((m, 33)).astype(np.float32)
    w = rng.standard_normal((20, 33)).astype(np.float32)
    opt, plain = _both(lambda a, b: a @ b.T, x, w)
    np.testing.assert_allclose(opt, x @ w.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(plain, x @ w.T, rtol=1e-5, atol=1e-5)
    kernels = len((lt.tensor(x) @ lt.tensor(w).T).schedule())
    assert kernels == (2 if m >= PACK_MIN_ROWS else 1)   # the packing copy is its own kernel


def test_linear_gradients_through_the_packed_weight_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 12)).astype(np.float32)
    w = rng.standard_normal((7, 12)).astype(np.float32)
    ox, ow = lt.tensor(x, requires_grad=True), lt.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (ox @ ow.T).square().sum().backward()
    (tx @ tw.T).square().sum().backward()
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ow.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 127, 1023, 70001])
def test_float_selects_are_bit_exact_blends(dtype, n):
    """where() on floats renders as a bit blend (vectorizable): NaN, -0.0, inf pass through untouched."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(dtype)
    a[::5] = np.nan
    a[1::7] = -0.0
    a[2::11] = np.inf
    b = rng.standard_normal(n).astype(dtype)
    opt, plain = _both(lambda x, y: lt.where(x < y, x + 1, y * 2), a, b)
    want = np.where(a < b, a + 1, b * 2)
    np.testing.assert_array_equal(opt.view(np.uint8), want.view(np.uint8))
    np.testing.assert_array_equal(plain.view(np.uint8), want.view(np.uint8))


def test_lone_parallel_loops_are_rendered_simd_and_match_numpy():
    from lazytensor.codegen.render.c import CRenderer
    n = 1 << 19   # large enough to be parallel
    x = np.random.default_rng(0).uniform(-80, 80, n).astype(np.float32)   # normal results
    t = lt.tensor(x).exp()
    (item,) = t.schedule()
    source = CRenderer().render(optimize(lower_kernel(item.ast)))
    assert "#pragma omp parallel for simd" in source
    np.testing.assert_allclose(t.numpy(), np.exp(x.astype(np.float64)), rtol=3e-7)


@pytest.mark.parametrize("n", [1, 7, 64, 127, 128, 1023, 4096])
@pytest.mark.parametrize("layout", ["plain", "transposed", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_reduce_lanes_keep_row_reductions_exact(n, layout, dtype):
    """sum / max / softmax / dot along a contiguous axis, with and without the lane split."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal((5, n)).astype(dtype)
    if layout == "transposed":
        a = np.ascontiguousarray(a.T).T
    elif layout == "strided":
        a = rng.standard_normal((5, 2 * n)).astype(dtype)[:, ::2]
    a[2, n // 2] = np.nan
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for fn, want in [(lambda t: t.sum(1), np.sum(a, 1)), (lambda t: t.amax(1), np.max(a, 1)),
                     (lambda t: (t * t).sum(1), (a * a).sum(1))]:
        opt, plain = _both(fn, a)
        np.testing.assert_allclose(opt, want, rtol=rtol, atol=rtol * n)
        np.testing.assert_allclose(plain, want, rtol=rtol, atol=rtol * n)
    opt, plain = _both(lambda t: t.softmax(-1), a)
    np.testing.assert_allclose(opt, plain, rtol=rtol, atol=rtol)


def test_split_reduce_lanes_applies_to_a_long_contiguous_row_sum():
    from lazytensor.codegen.opt import split_reduce_lanes
    (item,) = lt.tensor(np.ones((4, 256), np.float32)).sum(1).schedule()
    kernel = split_reduce_lanes(lower_kernel(item.ast))
    assert any(note.startswith("split reduce") and "16 lanes" in note for note in kernel.notes)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32])
def test_guarded_loads_in_an_upcast_reduce_survive_the_c_compiler(dtype):
    """GCC 12.2's loop vectorizer turned this kernel (a row sum over a padded, transposed input: 7
    upcast lanes of guarded loads) into reads of garbage; runtime/cpu.py turns off loop if-conversion."""
    from lazytensor.ops import Op
    a = np.random.default_rng(0).integers(-3, 4, (129, 7)).astype(dtype)
    want = np.pad(np.moveaxis(a, 0, -1), [(0, 0), (0, 127)]).reshape(7, 2, 128)
    x = lt.tensor(a).movedim(0, -1)._pad_zeros([(0, 0), (0, 127)]).reshape(7, 2, 128)
    total = x._masked_scan_last(Op.ADD, "cumsum").narrow(-1, 127, 1).reshape(7, 2)
    np.testing.assert_array_equal(total.numpy(), want.sum(-1))


@pytest.mark.parametrize("m,k,n", [(12, 5, 4), (13, 9, 20), (7, 16, 33), (20, 11, 10)])
def test_matmul_gradients_with_loop_free_tile_nests_match_torch(m, k, n):
    """Tiles with a peeled tail can leave two nests without loops in one kernel; each must keep its
    accumulator names to itself (a C redefinition error once)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(m + k + n)
    x, w, r = (rng.standard_normal(s).astype(np.float32) for s in [(m, k), (n, k), (m, n)])
    ox, ow = lt.tensor(x, requires_grad=True), lt.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ((ox @ ow.T) * lt.tensor(r)).sum().backward()
    ((tx @ tw.T) * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ow.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_only_a_stored_right_operand_is_packed():
    """Packing copies the right operand into panels; a computed operand stays fused into the matmul
    (packing it would compute it inside the copy, in panel order)."""
    a, b = lt.randn(32, 40).realize(), lt.randn(40, 48).realize().requires_grad_()
    assert len((a @ b).schedule()) == 2                   # pack b, then the tiled matmul
    assert len((a @ (b * 2)).schedule()) == 1             # b * 2 is computed inside the matmul


def test_a_stored_operand_without_gradient_is_packed_once_per_value():
    """No gradient reaches b: its packed copy is made the first time and kept while b holds that value,
    so later matmuls run one kernel; an in-place update of b makes a fresh copy."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((32, 40)).astype(np.float32), rng.standard_normal((40, 48)).astype(np.float32)
    a, b = lt.tensor(x), lt.tensor(y)
    np.testing.assert_allclose((a @ b).numpy(), x @ y, rtol=1e-5, atol=1e-5)
    assert len((a @ b).schedule()) == 1
    b.mul_(2)
    np.testing.assert_allclose((a @ b).numpy(), x @ (2 * y), rtol=1e-5, atol=1e-5)


def test_backward_reads_the_weight_in_its_own_layout():
    """The packed copy of w serves the forward pass only: x's gradient reads w itself (in the packed
    layout its vector axis would be strided), so it is one kernel with no copy."""
    x = lt.randn(32, 64, requires_grad=True)
    w = lt.randn(48, 64).realize()
    (x @ w.T).sum().backward()
    assert len(x.grad.schedule()) == 1


@pytest.mark.parametrize("features", [1, 3, 16, 64, 40])
@pytest.mark.parametrize("op", ["index_add", "index_copy"])
def test_scatter_split_along_its_collision_free_axis_matches_torch(features, op):
    """index_add(0, idx, src): the feature axis never collides, so it is split into chunks that
    threads may own (LoopNest.disjoint_outer); results stay exact, duplicates included."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(features)
    n_src = 5000 if op == "index_add" else 7
    idx = rng.integers(0, 37, n_src) if op == "index_add" else rng.permutation(37)[:n_src]
    src = rng.standard_normal((n_src, features)).astype(np.float32)
    base = rng.standard_normal((37, features)).astype(np.float32)
    ours = getattr(lt.tensor(base), op)(0, lt.tensor(idx), lt.tensor(src)).numpy()
    want = getattr(torch.tensor(base), op)(0, torch.tensor(idx), torch.tensor(src)).numpy()
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-4)


def test_a_wide_scatter_runs_its_feature_chunks_in_parallel():
    idx = lt.tensor(np.arange(4096) % 100)
    src = lt.randn(4096, 64).realize()
    *_, item = lt.zeros(100, 64).index_add(0, idx, src).schedule()
    kernel = optimize(lower_kernel(item.ast))
    scatter = kernel.nests[-1]
    assert scatter.disjoint_outer and scatter.loops[0].parallel
    assert scatter.loops[0].size == 4 and scatter.loops[-1].size == 16    # 4 chunks of 16 features


@pytest.mark.parametrize("k,aliased", [(1024, True), (2048, True), (384, False), (1000, False)])
def test_tile_rows_stay_within_the_l1_ways_when_left_rows_alias(k, aliased):
    """Left-operand rows k floats apart share an L1 set when 4k bytes is a multiple of 4 KiB: the tile
    then keeps at most L1_WAYS rows, else it fills the registers."""
    from lazytensor.codegen.cpu_target import L1_WAYS, tile_row_bytes
    a, b = lt.randn(64, k).realize(), lt.randn(k, 64).realize()
    kernel = lower_kernel((a @ b).schedule()[-1].ast)
    unit = host_vector_unit()
    upcasts = dict(choose_upcasts(kernel.nests[0], unit))
    rows = [lanes for pos, lanes in upcasts.items() if pos == 0]
    full = tile_rows(tile_row_bytes(unit), unit)
    assert rows == [min(full, L1_WAYS) if aliased else _dividing_row_count(64, full, unit)]


@pytest.mark.parametrize("size,most,rows", [(64, 12, 8), (512, 12, 8), (480, 12, 12), (100, 12, 10),
                                            (97, 12, 12), (32, 12, 8), (128, 6, 4), (7, 6, 6), (9, 6, 6)])
def test_row_count_prefers_a_divisor_near_the_register_limit(size, most, rows):
    """With 32 vector registers, a tile row count that divides the loop (no tail nest) when one lies
    within 2/3 of the most the registers hold; otherwise the most, with a tail. With 16 (AVX2), always
    the most."""
    from lazytensor.codegen.cpu_target import VectorUnit
    assert _dividing_row_count(size, most, VectorUnit(64, 32)) == rows
    assert _dividing_row_count(size, most, VectorUnit(32, 16)) == most


@pytest.mark.parametrize("n", [100, 40, 70, 20])
def test_vector_axis_longer_than_a_tile_row_takes_full_rows_and_a_tail(n):
    """An (unpacked) output axis longer than a full tile row but not a multiple of it is tiled by full
    rows, the rest in a tail nest (100 = 3 x 32 + 4), instead of narrow tiles that divide it (4 lanes:
    a 256x256 @ 256x100 matmul took 262 us, now 120 on one thread); the result is NumPy's."""
    from lazytensor.codegen.cpu_target import tile_row_bytes
    rng = np.random.default_rng(n)
    a_np, b_np = rng.standard_normal((24, 64)).astype(np.float32), rng.standard_normal((64, n)).astype(np.float32)
    a, b = lt.tensor(a_np), lt.tensor(b_np)
    kernel = lower_kernel((a.T.contiguous().T @ b).schedule()[-1].ast)
    unit = host_vector_unit()
    widest = tile_row_bytes(unit) // 4
    vector = [lanes for pos, lanes in choose_upcasts(kernel.nests[0], unit) if pos == len(kernel.nests[0].loops) - 1]
    assert vector == [widest if n > widest else n]
    optimized = optimize(kernel)
    if n > widest and n % widest:
        assert any(f"tail of {n % widest}" in note for note in optimized.notes)
    np.testing.assert_allclose((a @ b).numpy(), a_np @ b_np, rtol=1e-4, atol=1e-4)
