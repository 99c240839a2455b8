"""Math functions for the C renderer that GCC can vectorize: inline arithmetic, no libm call.

A call to libm's log2f in a loop keeps the loop scalar (glibc's vector variants are declared only
under -ffast-math, which the C dialect cannot use: it would change a*b+c and NaN handling). The
helpers here are static inline, branch-free C (selects are bit blends: loop if-conversion is off,
see runtime/cpu.py), so a kernel that uses them vectorizes like any other elementwise loop.

They serve float32 and the 16-bit floats, whose math runs in float32; float64 keeps libm's log2.
"""
from __future__ import annotations

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

VECTORIZABLE_F32 = {"log2": (LOG2_F32, LOG2_F32_SOURCE)}
"""libm function name -> (helper name, helper source) for float32 math."""
