"""codegen/transpose_tiles.py: transposing copies tiled in squares give NumPy's values."""
from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
from lazytensor.codegen.lower import lower_kernel
from lazytensor.codegen.opt import optimize
from lazytensor.codegen.cpu_target import host_vector_unit
from lazytensor.codegen.render.c import CRenderer
from lazytensor.beam import _Timer
from lazytensor.codegen import transpose_tiles
from lazytensor.codegen.transpose_tiles import register_transpose_loop, sweep_thrashes, transposed_loop

CASES = [((1024, 1024), (1, 0)), ((512, 2048), (1, 0)), ((2048, 96), (1, 0)), ((64, 1024, 8), (2, 1, 0)),
         ((3, 1024, 520), (0, 2, 1)), ((1030, 1024), (1, 0)), ((8, 16), (1, 0)), ((7, 1, 4096), (2, 1, 0))]


def _kernel(out: lt.Tensor):
    (item,) = out.schedule()
    return lower_kernel(item.ast)


@pytest.mark.parametrize("shape,perm", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.bool_])
def test_tiled_transposes_match_numpy(shape, perm, dtype):
    a = (np.random.default_rng(len(shape)).standard_normal(shape) * 50).astype(dtype)
    out = lt.tensor(a).permute(*perm).contiguous()
    np.testing.assert_array_equal(out.numpy(), np.transpose(a, perm))


def test_a_transposed_and_computed_copy_with_padding_matches_numpy():
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    out = (lt.tensor(a).T * 2 + 1).pad((1, 2, 0, 3)).contiguous()
    np.testing.assert_array_equal(out.numpy(), np.pad(a.T * 2 + 1, [(0, 3), (1, 2)]))


def test_a_big_transpose_is_tiled_and_a_small_one_is_not():
    big = _kernel(lt.randn(1024, 1024).realize().T.contiguous())
    assert transposed_loop(big.nests[0]) == 0
    huge = _kernel(lt.randn(2048, 2048).realize().T.contiguous())    # (in registers up to 8 MiB)
    notes = optimize(huge).notes
    assert any(note.startswith("tile the transposing copy") and "16x16" in note for note in notes), notes
    small = _kernel(lt.randn(32, 64, 256).realize().permute(0, 2, 1).contiguous())
    assert transposed_loop(small.nests[0]) is None          # 64 lines 1 KiB apart stay in cache
    plain = _kernel(lt.randn(1024, 1024).realize() * 2)
    assert transposed_loop(plain.nests[0]) is None          # not a transpose


@pytest.mark.parametrize("lines,stride,thrashes", [(4096, 16384, True), (1024, 4096, True), (64, 32768, True),
                                                   (64, 1024, False), (256, 1024, False), (512, 260, False)])
def test_sweep_thrashes_when_the_lines_outnumber_their_l2_sets(lines, stride, thrashes):
    assert sweep_thrashes(lines, stride) is thrashes


# ---- register transposes (AVX-512 / AVX hosts): 16x16 / 8x8 tiles of 4-byte elements through vector registers ----

REGISTER_CASES = [((128, 784), (1, 0)), ((512, 784), (1, 0)), ((64, 1024, 16), (2, 1, 0)), ((16, 16), (1, 0)),
                  ((3, 32, 48), (0, 2, 1)), ((48, 5, 32), (2, 1, 0)), ((17, 32), (1, 0)), ((32, 20), (1, 0))]


@pytest.mark.parametrize("shape,perm", REGISTER_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint32])
def test_register_transposes_match_numpy(shape, perm, dtype):
    a = (np.random.default_rng(len(shape)).standard_normal(shape) * 1000).astype(dtype)
    out = lt.tensor(a).permute(*perm).contiguous()
    np.testing.assert_array_equal(out.numpy(), np.transpose(a, perm))


def test_register_transpose_copies_nans_and_signed_zeros_bit_for_bit():
    a = np.random.default_rng(1).standard_normal((32, 48)).astype(np.float32)
    a[::3, ::5] = np.nan
    a[1::4, 2::7] = -0.0
    out = lt.tensor(a).T.contiguous().numpy()
    np.testing.assert_array_equal(out.view(np.uint32), np.ascontiguousarray(a.T).view(np.uint32))


def test_a_matmul_weight_pack_is_a_register_transpose_of_a_strided_view():
    w = lt.randn(512, 784).realize()
    packed = w.T.reshape(784, 16, 32).permute(1, 0, 2).contiguous()   # matmul's panel layout
    kernel = _kernel(packed)
    assert register_transpose_loop(kernel.nests[0], 4) is not None
    optimized = optimize(kernel)
    side = {64: 16, 32: 8}.get(host_vector_unit().width_bytes)
    if side:
        assert any("in registers" in note for note in optimized.notes), optimized.notes
        assert f"lt_transpose{side}_b32" in CRenderer().render(optimized)
    ref = w.numpy().T.reshape(784, 16, 32).transpose(1, 0, 2)
    np.testing.assert_array_equal(packed.numpy(), ref)


def test_register_transposes_need_whole_tiles_of_4_byte_plain_copies():
    assert register_transpose_loop(_kernel(lt.randn(20, 32).realize().T.contiguous()).nests[0], 4) is None
    assert register_transpose_loop(_kernel(lt.randn(32, 32).realize().double().T.contiguous()).nests[0],
                                   8) is None
    computed = _kernel((lt.randn(32, 32).realize().T * 2).contiguous())
    assert register_transpose_loop(computed.nests[0], 4) is None      # not a plain copy


@pytest.mark.parametrize("side", [8, 16])
@pytest.mark.parametrize("shape,perm", [((128, 784), (1, 0)), ((3, 32, 48), (0, 2, 1)), ((48, 5, 32), (2, 1, 0))])
def test_both_register_tile_sides_match_numpy_on_any_host(side, shape, perm, monkeypatch):
    """The 8x8 (AVX) and 16x16 (AVX-512) transpose helpers, each forced on whatever host runs the
    tests (where the host lacks the instructions, the helper's element loop runs instead)."""
    monkeypatch.setattr(transpose_tiles, "register_tile", lambda: side)
    kernel = _kernel(lt.randn(*shape).realize().permute(*perm).contiguous())
    optimized = optimize(kernel)
    assert f"lt_transpose{side}_b32(" in CRenderer().render(optimized)
    timer = _Timer(kernel)   # the same random input through the plain loop and the register tiles
    _, want = timer.run(kernel)
    _, got = timer.run(optimized)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
