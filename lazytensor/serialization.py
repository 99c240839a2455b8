"""lt.save / lt.load: checkpoints in the safetensors format, written and parsed here.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON header
({name: {"dtype", "shape", "data_offsets": [begin, end]}, optional "__metadata__": {str: str}}),
then the raw little-endian tensor bytes; offsets are relative to the start of that data section.

A plain state dict (str → Tensor) is stored as exactly that, so other safetensors readers see the
usual names. Anything else (a nested checkpoint with an optimizer state, a step counter, …) is
flattened: every tensor gets a dotted name built from its path, and the nesting plus the non-tensor
leaves are stored as JSON under the metadata key `STRUCTURE_KEY`, so `load` rebuilds the same object.

Loading validates the whole header before allocating anything (the safetensors rules: the data
section is covered exactly by the tensors, without gaps or overlaps); a bad file raises ValueError
naming the file and the problem.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, BinaryIO, NoReturn, Union

import numpy as np

from lazytensor import dtypes
from lazytensor import graph as g
from lazytensor.dtypes import DType
from lazytensor.runtime.device import Buffer, canonical_device
from lazytensor.tensor import Device, Tensor

FileLike = Union[str, "os.PathLike[str]", BinaryIO]

# safetensors dtype codes ↔ our dtypes
SAFETENSORS_DTYPES: dict[str, DType] = {
    "BOOL": dtypes.bool_, "U8": dtypes.uint8, "I8": dtypes.int8, "I16": dtypes.int16, "U16": dtypes.uint16,
    "I32": dtypes.int32, "U32": dtypes.uint32, "I64": dtypes.int64, "U64": dtypes.uint64,
    "F16": dtypes.float16, "BF16": dtypes.bfloat16, "F32": dtypes.float32, "F64": dtypes.float64,
}
DTYPE_CODES: dict[DType, str] = {dt: code for code, dt in SAFETENSORS_DTYPES.items()}
# Codes the format defines but lazytensor has no dtype for (a clearer error than "unknown").
UNSUPPORTED_CODES = ("F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "C128")

MAX_HEADER_BYTES = 100_000_000      # the limit safetensors itself enforces
MAX_NBYTES = 1 << 62                # no real tensor is larger; stops absurd shapes early
STRUCTURE_KEY = "lazytensor.structure"
METADATA_KEY = "__metadata__"


# ---------------------------------------------------------------- save

def save(obj: Any, f: FileLike) -> None:
    """Write obj (a state dict, or a nested checkpoint of dicts/lists/tuples holding tensors and
    int/float/str/bool/None leaves) to f (a path or a binary file) in the safetensors format."""
    tensors, structure = _flatten_checkpoint(obj)
    metadata = None if structure is None else {STRUCTURE_KEY: json.dumps(structure)}
    data = serialize(tensors, metadata)
    if hasattr(f, "write"):
        f.write(data)
    else:
        with open(f, "wb") as fh:
            fh.write(data)


def serialize(tensors: Mapping[str, Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """A name → Tensor mapping (and optional str → str metadata) as the bytes of a safetensors file."""
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save: tensor names must be str, got {name!r} ({type(name).__name__})")
        if not isinstance(t, Tensor):
            raise TypeError(f"save: value for {name!r} is a {type(t).__name__}, expected a lazytensor Tensor")
        if name == METADATA_KEY:
            raise ValueError(f"save: {METADATA_KEY!r} is reserved by the safetensors format")
    blobs = {name: _tensor_bytes(t) for name, t in tensors.items()}
    # Data laid out by descending itemsize so every tensor starts aligned to its element size;
    # the header keeps the caller's order so a loaded state dict iterates in the same order.
    layout = sorted(tensors, key=lambda n: (-tensors[n].dtype.itemsize, n))
    offsets: dict[str, list[int]] = {}
    position = 0
    for name in layout:
        offsets[name] = [position, position + len(blobs[name])]
        position += len(blobs[name])
    header: dict[str, Any] = {}
    if metadata:
        header[METADATA_KEY] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        header[name] = {"dtype": DTYPE_CODES[t.dtype], "shape": list(t.shape), "data_offsets": offsets[name]}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)    # pad with spaces so the data section is 8-byte aligned
    parts = [len(text).to_bytes(8, "little"), text] + [blobs[name] for name in layout]
    return b"".join(parts)


def _tensor_bytes(t: Tensor) -> bytes:
    """The tensor's elements, row-major, little-endian (realizes it; bfloat16 as its raw bits)."""
    if t.dtype not in DTYPE_CODES:
        raise TypeError(f"save: dtype {t.dtype} has no safetensors code")
    raw = t._buffer().copyout()     # views and lazy results are realized into a contiguous buffer
    expected = t.numel() * t.dtype.itemsize
    if raw.nbytes != expected:
        raise RuntimeError(f"save: realized buffer holds {raw.nbytes} bytes, expected {expected} for shape "
                           f"{tuple(t.shape)} {t.dtype}")
    if np.little_endian or t.dtype.itemsize == 1:
        return raw.tobytes()
    return raw.view(t.dtype.np).astype(t.dtype.np.newbyteorder("<")).tobytes()


def _flatten_checkpoint(obj: Any) -> tuple[dict[str, Tensor], Any]:
    """(tensors by dotted name, structure tree or None when obj is a plain str → Tensor dict)."""
    is_plain = isinstance(obj, Mapping) and METADATA_KEY not in obj and \
        all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    if is_plain:
        return dict(obj), None
    tensors: dict[str, Tensor] = {}
    names_by_id: dict[int, str] = {}
    structure = _encode(obj, [], tensors, names_by_id)
    return tensors, structure


def _encode(value: Any, path: list[str], tensors: dict[str, Tensor], names_by_id: dict[int, str]) -> Any:
    """One node of the structure tree: {"tensor": name} | {"dict": [[key, node]...]} | {"list": [...]} |
    {"tuple": [...]} | {"value": json scalar}."""
    if isinstance(value, Tensor):
        if id(value) not in names_by_id:       # the same tensor twice (tied weights) is stored once
            name = _unique_name(".".join(path) or "tensor", tensors)
            tensors[name] = value
            names_by_id[id(value)] = name
        return {"tensor": names_by_id[id(value)]}
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            items.append([_encode_key(key, path), _encode(item, path + [str(key)], tensors, names_by_id)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_encode(item, path + [str(i)], tensors, names_by_id) for i, item in enumerate(value)]}
    scalar = _as_json_scalar(value)
    if scalar is _NOT_SCALAR:
        where = ".".join(path) or "the top level"
        raise TypeError(f"save: cannot store a {type(value).__name__} at {where}; a checkpoint may hold "
                        "tensors, dicts, lists, tuples, and int/float/str/bool/None values")
    return {"value": scalar}


_NOT_SCALAR = object()


def _as_json_scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return _NOT_SCALAR


def _encode_key(key: Any, path: list[str]) -> Any:
    scalar = _as_json_scalar(key)
    if scalar is _NOT_SCALAR:
        where = ".".join(path) or "the top level"
        raise TypeError(f"save: dict key {key!r} at {where} is a {type(key).__name__}; keys must be "
                        "str, int, float, bool or None")
    return scalar


def _unique_name(base: str, taken: Mapping[str, Any]) -> str:
    name, i = base, 1
    while name in taken or name == METADATA_KEY:
        name = f"{base}#{i}"
        i += 1
    return name


# ---------------------------------------------------------------- load

def load(f: FileLike, map_location: Any = None, *, device: Any = None) -> Any:
    """Read a file written by `save` (or any safetensors file) back: the same nested structure, with
    tensors as lt.Tensor on `device` (or `map_location`; default: the default device)."""
    source, raw = _read_all(f)
    if device is None and map_location is not None:
        if not isinstance(map_location, str) and not hasattr(map_location, "type"):
            raise TypeError(f"load: map_location must be a device name, got {type(map_location).__name__}")
        device = map_location if isinstance(map_location, str) else map_location.type
    dev = canonical_device(device) if device is not None else Device.DEFAULT
    tensors, metadata = deserialize(raw, source, dev)
    if metadata is None or STRUCTURE_KEY not in metadata:
        return tensors
    return _decode_structure(metadata[STRUCTURE_KEY], tensors, source)


def deserialize(raw: bytes | memoryview, source: str = "<bytes>",
                device: str | None = None) -> tuple[dict[str, Tensor], dict[str, str] | None]:
    """Bytes of a safetensors file → (tensors by name in header order, metadata or None).
    Raises ValueError naming `source` and the problem for anything malformed."""
    entries, metadata, data_start = parse_header(raw, source)
    dev = device or Device.DEFAULT
    view = memoryview(raw)
    tensors = {}
    for entry in entries:
        begin = data_start + entry.begin
        tensors[entry.name] = _tensor_from_bytes(view[begin:data_start + entry.end], entry.dtype,
                                                 entry.shape, dev)
    return tensors, metadata


class _Entry:
    """One tensor's header record, validated."""
    __slots__ = ("name", "dtype", "shape", "begin", "end")

    def __init__(self, name: str, dtype: DType, shape: tuple[int, ...], begin: int, end: int) -> None:
        self.name, self.dtype, self.shape, self.begin, self.end = name, dtype, shape, begin, end


def parse_header(raw: bytes | memoryview, source: str = "<bytes>") -> tuple[list[_Entry], dict | None, int]:
    """Validate a safetensors file's header against its size: (entries in header order, metadata,
    offset of the data section). Nothing is allocated in proportion to what the header claims."""
    size = len(raw)
    if size < 8:
        _fail(source, f"file is {size} bytes, too short for a safetensors file (the header length alone "
                      "takes 8 bytes)")
    header_len = int.from_bytes(bytes(raw[:8]), "little")
    if header_len > MAX_HEADER_BYTES:
        _fail(source, f"header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit "
                      "(not a safetensors file, or corrupted)")
    if 8 + header_len > size:
        _fail(source, f"header length {header_len} is larger than the rest of the file ({size - 8} bytes): "
                      "the file is truncated or not a safetensors file")
    header = _parse_json(bytes(raw[8:8 + header_len]), source)
    data_len = size - 8 - header_len
    metadata = _check_metadata(header.pop(METADATA_KEY, None), source)
    entries = [_check_entry(name, info, source) for name, info in header.items()]
    _check_coverage(entries, data_len, source)
    return entries, metadata, 8 + header_len


def _fail(source: str, problem: str) -> NoReturn:
    raise ValueError(f"load: {source}: {problem}")


def _parse_json(text: bytes, source: str) -> dict[str, Any]:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        _fail(source, f"header is not valid UTF-8 ({e.reason} at byte {e.start})")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _DuplicateKey(key)
            result[key] = value
        return result

    try:
        header = json.loads(decoded, object_pairs_hook=no_duplicates)
    except _DuplicateKey as e:
        _fail(source, f"header has the key {e.args[0]!r} more than once")
    except json.JSONDecodeError as e:
        _fail(source, f"header is not valid JSON ({e.msg} at character {e.pos})")
    except RecursionError:
        _fail(source, "header JSON is nested too deeply")
    except ValueError as e:          # e.g. an integer literal longer than Python's digit limit
        _fail(source, f"header JSON cannot be read ({e})")
    if not isinstance(header, dict):
        _fail(source, f"header must be a JSON object, got a JSON {_json_kind(header)}")
    return header


class _DuplicateKey(Exception):
    pass


def _json_kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _check_metadata(metadata: Any, source: str) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        _fail(source, f"{METADATA_KEY} must be a JSON object of strings, got a JSON {_json_kind(metadata)}")
    for key, value in metadata.items():
        if not isinstance(value, str):
            _fail(source, f"{METADATA_KEY}[{key!r}] must be a string, got a JSON {_json_kind(value)}")
    return metadata


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(name: str, info: Any, source: str) -> _Entry:
    where = f"tensor {name!r}"
    if not isinstance(info, dict):
        _fail(source, f"{where}: expected a JSON object with dtype, shape and data_offsets, "
                      f"got a JSON {_json_kind(info)}")
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
    if missing:
        _fail(source, f"{where}: missing {', '.join(missing)}")
    code = info["dtype"]
    if not isinstance(code, str) or code not in SAFETENSORS_DTYPES:
        if code in UNSUPPORTED_CODES:
            _fail(source, f"{where}: dtype {code} is not supported by lazytensor")
        _fail(source, f"{where}: unknown dtype {code!r}; expected one of {', '.join(SAFETENSORS_DTYPES)}")
    dt = SAFETENSORS_DTYPES[code]
    shape = info["shape"]
    if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
        _fail(source, f"{where}: shape must be a list of integers, got {_short(shape)}")
    if any(d < 0 for d in shape):
        _fail(source, f"{where}: shape {_short(shape)} has a negative dimension")
    nbytes = dt.itemsize
    for d in shape:                  # stop as soon as the size is absurd: no giant integer products
        nbytes *= d
        if nbytes > MAX_NBYTES:
            _fail(source, f"{where}: shape {_short(shape)} is too large ({code} elements overflow)")
    offsets = info["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        _fail(source, f"{where}: data_offsets must be [begin, end] integers, got {_short(offsets)}")
    begin, end = offsets
    if begin < 0 or end < begin:
        _fail(source, f"{where}: data_offsets [{begin}, {end}] are invalid (need 0 <= begin <= end)")
    if end - begin != nbytes:
        _fail(source, f"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes but shape "
                      f"{_short(shape)} of {code} needs {nbytes}")
    return _Entry(name, dt, tuple(shape), begin, end)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _check_coverage(entries: list[_Entry], data_len: int, source: str) -> None:
    """The tensors must tile the data section exactly: no gaps, no overlaps, nothing left over."""
    position = 0
    previous: _Entry | None = None
    for entry in sorted(entries, key=lambda e: (e.begin, e.end)):
        if entry.begin < position:
            _fail(source, f"tensor {entry.name!r} (bytes {entry.begin}..{entry.end}) overlaps tensor "
                          f"{previous.name!r} (bytes {previous.begin}..{previous.end})")
        if entry.begin > position:
            _fail(source, f"gap of {entry.begin - position} bytes before tensor {entry.name!r} in the data "
                          "section (offsets must be contiguous)")
        if entry.end > data_len:
            _fail(source, f"tensor {entry.name!r} ends at byte {entry.end} but the data section has "
                          f"{data_len} bytes: the file is truncated")
        position = entry.end
        previous = entry
    if position != data_len:
        _fail(source, f"{data_len - position} unexpected bytes after the last tensor in the data section")


def _tensor_from_bytes(data: memoryview, dt: DType, shape: tuple[int, ...], device: str) -> Tensor:
    """A realized tensor holding a copy of little-endian bytes (bfloat16: raw bits, bool: nonzero)."""
    if dt.is_bool:
        host = np.frombuffer(data, dtype=np.uint8) != 0   # any nonzero byte means True
    else:
        host = np.frombuffer(data, dtype=dt.np.newbyteorder("<")).astype(dt.np.newbyteorder("="))
    buf = Buffer(device, host.nbytes)
    buf.copyin(host)
    return Tensor._from_node(g.buffer(buf, dt, shape), device)


def _read_all(f: FileLike) -> tuple[str, bytes]:
    """(a name for error messages, the whole content)."""
    if hasattr(f, "read"):
        name = getattr(f, "name", None)
        source = repr(name) if isinstance(name, str) else f"<{type(f).__name__}>"
        data = f.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"load: {source} must be opened in binary mode (read() returned "
                            f"{type(data).__name__})")
        return source, bytes(data)
    path = os.fspath(f)
    with open(path, "rb") as fh:
        return repr(str(path)), fh.read()


def _decode_structure(text: str, tensors: dict[str, Tensor], source: str) -> Any:
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as e:
        _fail(source, f"metadata {STRUCTURE_KEY!r} is not valid JSON ({e.msg})")
    except RecursionError:
        _fail(source, f"metadata {STRUCTURE_KEY!r} is nested too deeply")
    try:
        return _decode(tree, tensors, source)
    except RecursionError:
        _fail(source, f"metadata {STRUCTURE_KEY!r} is nested too deeply")


def _decode(node: Any, tensors: dict[str, Tensor], source: str) -> Any:
    if not isinstance(node, dict) or len(node) != 1:
        _fail(source, f"metadata {STRUCTURE_KEY!r} has a malformed node {_short(node)}")
    ((kind, body),) = node.items()
    if kind == "tensor":
        if not isinstance(body, str) or body not in tensors:
            _fail(source, f"metadata {STRUCTURE_KEY!r} refers to a tensor {_short(body)} "
                          "the file does not hold")
        return tensors[body]
    if kind == "value":
        if isinstance(body, (dict, list)):
            _fail(source, f"metadata {STRUCTURE_KEY!r} has a non-scalar value {_short(body)}")
        return body
    if kind in ("list", "tuple") and isinstance(body, list):
        items = [_decode(item, tensors, source) for item in body]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict" and isinstance(body, list):
        result = {}
        for pair in body:
            if not isinstance(pair, list) or len(pair) != 2 or isinstance(pair[0], (dict, list)):
                _fail(source, f"metadata {STRUCTURE_KEY!r} has a malformed dict item {_short(pair)}")
            result[pair[0]] = _decode(pair[1], tensors, source)
        return result
    _fail(source, f"metadata {STRUCTURE_KEY!r} has a malformed node {_short(node)}")


__all__ = ["save", "load", "serialize", "deserialize", "parse_header"]
