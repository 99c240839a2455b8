"""Math functions for the C renderer that GCC can vectorize: inline arithmetic, no libm call.

A call to libm's log2f in a loop keeps the loop scalar (glibc's vector variants are declared only
under -ffast-math, which the C dialect cannot use: it would change a*b+c and NaN handling). The
helpers here are static inline, branch-free C (selects are bit blends: loop if-conversion is off,
see runtime/cpu.py), so a kernel that uses them vectorizes like any other elementwise loop.

They serve float32 and the 16-bit floats, whose math runs in float32 (log2, exp2, sin, cos); float64
keeps libm.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

LOG2_F32 = "lt_log2f"

LOG2_F32_SOURCE = """static inline float lt_log2f(float x) {
  /* x = 2^e * m, m in [sqrt(1/2), sqrt(2)): log2 x = e + 2 atanh(s) / ln 2 with s = (m - 1) / (m + 1).
     The split is exact (integer work on float32 bits; subnormal x is scaled by 2^23 first) and the
     series runs in double (|s| <= 0.1716, terms up to s^11: relative error below 1e-10), so the one
     rounding to float32 is that of the result: within half an ulp but for results within 1e-10 of a
     rounding boundary. Zero gives -inf, +inf gives +inf, a negative or NaN x gives NaN. */
  unsigned int xb; memcpy(&xb, &x, 4);
  unsigned int tiny = 0u - (unsigned int)(x < 1.17549435e-38f);
  float scaled = x * 8388608.0f;
  unsigned int sb; memcpy(&sb, &scaled, 4);
  unsigned int b = (sb & tiny) | (xb & ~tiny);
  int e = (int)((b >> 23) & 0xffu) - 127 - (int)(tiny & 23u);
  unsigned int mb = (b & 0x007fffffu) | 0x3f800000u;
  unsigned int big = 0u - (unsigned int)(mb > 0x3fb504f3u);
  mb -= big & 0x00800000u;
  e += (int)(big & 1u);
  float m; memcpy(&m, &mb, 4);
  double f = (double)m - 1.0;
  double s = f / (f + 2.0), z = s * s;
  double p = 2.0 / 11.0;
  p = p * z + 2.0 / 9.0;
  p = p * z + 2.0 / 7.0;
  p = p * z + 2.0 / 5.0;
  p = p * z + 2.0 / 3.0;
  p = p * z + 2.0;
  float out = (float)((double)e + s * p * 1.4426950408889634);
  unsigned int ob; memcpy(&ob, &out, 4);
  unsigned int zero = 0u - (unsigned int)(x == 0.0f);
  unsigned int inf = 0u - (unsigned int)(xb == 0x7f800000u);
  unsigned int nan = 0u - (unsigned int)((x < 0.0f) | (x != x));
  ob = (ob & ~zero) | (0xff800000u & zero);
  ob = (ob & ~inf) | (0x7f800000u & inf);
  ob = (ob & ~nan) | (0x7fc00000u & nan);
  memcpy(&out, &ob, 4);
  return out;
}"""

EXP2_F32_SOURCE = """static inline float lt_exp2f(float x) {
  /* 2^x = 2^n · 2^f, n = rint(x), |f| <= 1/2 exact: 2^f = e^(f·ln 2) by its Taylor series in double
     (terms to the 11th power: relative error below 1e-13) times 2^n built in double's exponent
     bits (x clamped to ±200 first: double holds every 2^n there), and one rounding to float32, which
     gives overflow to inf and subnormal and zero results their own rounding. NaN stays NaN. */
  unsigned int low = 0u - (unsigned int)(x < -200.0f), high = 0u - (unsigned int)(x > 200.0f);
  unsigned int xb, lb = 0xc3480000u, hb = 0x43480000u;
  memcpy(&xb, &x, 4);
  xb = (xb & ~low) | (lb & low);
  xb = (xb & ~high) | (hb & high);
  float xc; memcpy(&xc, &xb, 4);
  double d = (double)xc;
  double n = __builtin_rint(d);
  double t = (d - n) * 0.6931471805599453;
  double p = 1.0 / 39916800.0;
  p = p * t + 1.0 / 3628800.0;
  p = p * t + 1.0 / 362880.0;
  p = p * t + 1.0 / 40320.0;
  p = p * t + 1.0 / 5040.0;
  p = p * t + 1.0 / 720.0;
  p = p * t + 1.0 / 120.0;
  p = p * t + 1.0 / 24.0;
  p = p * t + 1.0 / 6.0;
  p = p * t + 0.5;
  p = p * t + 1.0;
  p = p * t + 1.0;
  long long scale_bits = ((long long)(int)n + 1023) << 52;
  double scale; memcpy(&scale, &scale_bits, 8);
  return (float)(p * scale);
}"""


def _exp2_source() -> str:
    return EXP2_F32_SOURCE


def _log2_source() -> str:
    return LOG2_F32_SOURCE


VECTORIZABLE_F32: dict[str, tuple[str, Callable[[], str]]] = {"log2": (LOG2_F32, _log2_source),
                                                              "exp2": ("lt_exp2f", _exp2_source)}
"""libm function name -> (helper name, the function giving the helper's source) for float32 math.
Helpers that share a source (sin and cos) share the function: a kernel includes each source once."""


# ---- sin and cos for float32: exact argument reduction by a table of 2/π, polynomials in double ----

def _two_over_pi(bits: int) -> int:
    """⌊2/π · 2^bits⌋, from π by Machin's formula in integer arithmetic (exact to the last bit or two)."""
    guard = 32
    one = 1 << (bits + guard)

    def arctan_inverse(x: int) -> int:   # arctan(1/x) · one
        total = term = one // x
        n, sign = 1, -1
        while term:
            term //= x * x
            n += 2
            total += sign * (term // n)
            sign = -sign
        return total

    pi_scaled = 4 * (4 * arctan_inverse(5) - arctan_inverse(239))   # π · 2^(bits + guard)
    return (1 << (2 * (bits + guard) + 1)) // pi_scaled >> guard


SIN_PARTS = 4
"""Pieces of 2^E·2/π (mod 4) per float32 exponent E, 26 significant bits each: a 24-bit mantissa
times a piece is exact in double."""
_PART_BITS = 26
_TABLE_BITS = 800


def _sin_table() -> list[list[float]]:
    """For E = -149 … 104 (every float32 x = M·2^E, M a 24-bit integer): 2^E·2/π mod 4 as SIN_PARTS
    doubles of 26 significant bits, largest first, whose sum is that value to about 100 bits."""
    numerator = _two_over_pi(_TABLE_BITS)
    parts: list[list[float]] = [[] for _ in range(SIN_PARTS)]
    for exponent in range(-149, 105):
        scale = _TABLE_BITS - exponent               # the value is rest / 2^scale
        rest = numerator % (1 << (scale + 2))        # mod 4
        for part in parts:
            shift = max(rest.bit_length() - _PART_BITS, 0)
            piece = (rest >> shift) << shift
            part.append(math.ldexp(float(piece >> shift), shift - scale) if piece else 0.0)
            rest -= piece
    return parts


GATHER_TUNING = """#if defined(__x86_64__) && defined(__AVX2__)
#pragma GCC target("tune=haswell")
#endif
"""
"""GCC's tuning for AMD Zen (what -march=native picks there) turns vector gathers off, and without
them a loop reading lt_sinf's table stays scalar (2x slower than libm's sinf); Haswell's tuning
allows them. It holds from here to the end of the kernel's source: the kernel's own loop is the one
vectorized."""


@functools.cache
def _sin_source() -> str:
    """lt_sinf's and lt_cosf's source with their tables (made on first use: ~3 ms)."""
    tables = [f"static const double lt_sin_t{i}[254] = {{{', '.join(repr(v) for v in part)}}};"
              for i, part in enumerate(_sin_table())]
    return "\n".join(tables) + "\n" + GATHER_TUNING + """static inline float lt_sincosf(float x, int want_cos) {
  /* sin x (want_cos 0) or cos x = sin(|x| + π/2) (want_cos 1). |x| = M·2^E (M a 24-bit integer): x·2/π mod 4 = M·(2^E·2/π mod 4), the table's four exact pieces
     times M, summed so that the quadrant k and the remainder f (|f| <= 1/2) keep about 80 bits (a
     Payne–Hanek reduction: right for every float, also near the multiples of π/2 of huge x). Then
     sin or cos of f·π/2 by Taylor polynomials in double (error below 1e-14) and one rounding to
     float32. NaN and ±inf give NaN. */
  unsigned int xb; memcpy(&xb, &x, 4);
  unsigned int field = (xb >> 23) & 0xffu;
  unsigned int normal = 0u - (unsigned int)(field != 0u);
  int m = (int)((xb & 0x7fffffu) | (0x800000u & normal));
  int idx = (int)field - 1 + (int)(1u & ~normal);
  int over = -(int)(idx > 253);
  idx = (idx & ~over) | (253 & over);
  double md = (double)m;
  double a = md * lt_sin_t0[idx];
  double ka = __builtin_rint(a);
  double s = (a - ka) + md * lt_sin_t1[idx];
  double kb = __builtin_rint(s);
  double f = ((s - kb) + md * lt_sin_t2[idx]) + md * lt_sin_t3[idx];
  int k = (int)(ka + kb) + want_cos;
  double t = f * 1.5707963267948966;
  double t2 = t * t;
  double sp = -1.0 / 6227020800.0;
  sp = sp * t2 + 1.0 / 39916800.0;
  sp = sp * t2 - 1.0 / 362880.0;
  sp = sp * t2 + 1.0 / 5040.0;
  sp = sp * t2 - 1.0 / 120.0;
  sp = sp * t2 + 1.0 / 6.0;
  double sine = t - (t * t2) * sp;
  double cp = 1.0 / 87178291200.0;
  cp = cp * t2 - 1.0 / 479001600.0;
  cp = cp * t2 + 1.0 / 3628800.0;
  cp = cp * t2 - 1.0 / 40320.0;
  cp = cp * t2 + 1.0 / 720.0;
  cp = cp * t2 - 1.0 / 24.0;
  cp = cp * t2 + 0.5;
  double cosine = 1.0 - t2 * cp;
  unsigned long long odd = 0ull - (unsigned long long)(k & 1);
  unsigned long long sb, cb; memcpy(&sb, &sine, 8); memcpy(&cb, &cosine, 8);
  unsigned long long rb = (cb & odd) | (sb & ~odd);
  double r; memcpy(&r, &rb, 8);
  float out = (float)r;
  unsigned int ob; memcpy(&ob, &out, 4);
  ob ^= ((unsigned int)(k & 2) << 30) ^ (xb & 0x80000000u & (0u - (unsigned int)(want_cos == 0)));
  unsigned int nan = 0u - (unsigned int)(field == 0xffu);
  ob = (ob & ~nan) | (0x7fc00000u & nan);
  memcpy(&out, &ob, 4);
  return out;
}
static inline float lt_sinf(float x) { return lt_sincosf(x, 0); }
static inline float lt_cosf(float x) { return lt_sincosf(x, 1); }"""


VECTORIZABLE_F32["sin"] = ("lt_sinf", _sin_source)
VECTORIZABLE_F32["cos"] = ("lt_cosf", _sin_source)   # (one source: both names in it)
