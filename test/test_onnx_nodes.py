"""ONNX's official node tests, built in memory from `onnx.backend.test.case.node` (the installed onnx),
each run through lazytensor and compared with ONNX's own runner check (same shapes and dtypes,
rtol=1e-3, atol=1e-7). Cases we cannot pass are listed with a reason in onnx_node_exclusions.txt.

`python test/onnx_node_report.py` runs every case (excluded ones too) and writes docs/onnx_node_table.md.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

EXCLUSIONS_PATH = Path(__file__).with_name("onnx_node_exclusions.txt")


@functools.lru_cache(maxsize=1)
def node_cases() -> tuple[Any, ...]:
    """Every node test case of the installed onnx (each a TestCase with model and data_sets)."""
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return tuple(collect_testcases(None))


def read_exclusions(path: Path = EXCLUSIONS_PATH) -> dict[str, str]:
    """case name → reason, from lines `name  # reason` (blank lines and full-line comments skipped)."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition("#")
        out[name.strip()] = reason.strip() or "no reason given"
    return out


def _to_reference(value: Any) -> Any:
    """A runner input/output (ndarray, TensorProto, list of them, None) as NumPy data."""
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, list):
        return [_to_reference(v) for v in value]
    return value


def _to_numpy(value: Any, onnx_type: int | None = None) -> Any:
    """Our output (Tensor, sequence of Tensors or None) as NumPy, bfloat16 as ml_dtypes.bfloat16; an
    output declared float8/float4/int4/int2 (held in a wider dtype) as that ml_dtypes type."""
    import lazytensor as lt
    from lazytensor.onnx.ops_lowprecision import is_narrow_code, to_numpy
    if value is None:
        return None
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    if is_narrow_code(onnx_type):
        return to_numpy(value, onnx_type)
    arr = value.numpy()
    if value.dtype is lt.bfloat16:
        import ml_dtypes
        arr = arr.astype(ml_dtypes.bfloat16)
    return np.asarray(arr)


def run_case(case: Any) -> None:
    """Load the case's model into lazytensor, run it on the case's inputs and check every output."""
    import lazytensor as lt
    from onnx.backend.test.runner import Runner
    from lazytensor.onnx import load
    model = load(case.model)
    for inputs, ref_outputs in case.data_sets:
        feeds = dict(zip(model.input_names, [_to_reference(x) for x in inputs]))
        outputs = model(**feeds)
        values = list(outputs.values())
        lt.realize(*[v for v in values if isinstance(v, lt.Tensor)])
        got = [_to_numpy(v, model.output_types[name]) for name, v in outputs.items()]
        Runner.assert_similar_outputs([_to_reference(r) for r in ref_outputs], got,
                                      rtol=case.rtol, atol=case.atol)


def _case_params() -> list[Any]:
    try:
        cases = node_cases()
    except Exception as exc:  # pragma: no cover - a broken onnx install
        return [pytest.param(None, id="collect", marks=pytest.mark.skip(reason=f"collecting cases: {exc}"))]
    excluded = read_exclusions()
    params = []
    for case in cases:
        marks = [pytest.mark.skip(reason=f"excluded: {excluded[case.name]}")] if case.name in excluded else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.mark.parametrize("case", _case_params())
def test_onnx_node(case: Any) -> None:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        run_case(case)


def test_exclusions_name_real_cases() -> None:
    """Every exclusion names a case of the installed onnx (a stale entry hides nothing)."""
    names = {c.name for c in node_cases()}
    stale = sorted(set(read_exclusions()) - names)
    assert not stale, f"onnx_node_exclusions.txt lists cases that do not exist: {stale[:10]}"
