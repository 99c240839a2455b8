"""Record every distinct kernel AST a process compiles, to re-render it later for another device.

The test suite runs on the CPU; with recording on (`LAZYTENSOR_RECORD_KERNELS=DIR`, or
`pytest --record-kernels DIR`), `realize.compile_kernel` hands each kernel it has not compiled
before to `record`, which appends it to `DIR/kernels-<pid>.pkl` (one file per process, so
pytest-xdist workers never share a file). `load_recorded(DIR)` reads them all back, deduplicated,
as hash-consed ASTs that `lower_kernel` + `optimize_gpu` + the CUDA renderer accept
(test/test_cuda_compile.py compiles them all with nvcc).

A kernel is stored as a node table in topological order: (op, dtype, source indices, arg, shape)
per node, so loading rebuilds it through `Node.make` (pickling Nodes directly would bypass the
hash-cons table). Off, recording costs one module-attribute test per newly compiled kernel.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from lazytensor import config
from lazytensor.graph import Node, toposort

ENV_VAR = "LAZYTENSOR_RECORD_KERNELS"
FILE_PATTERN = "kernels-*.pkl"
FORMAT_VERSION = 1

RECORDING = False
"""True while this process records kernels (read by realize.compile_kernel on every new kernel)."""

_directory: Path | None = None
_file: BinaryIO | None = None
_file_pid = -1
_seen: set[bytes] = set()


NodeTable = tuple[tuple[Any, Any, tuple[int, ...], Any, tuple[int, ...]], ...]


@dataclass
class RecordedKernel:
    """One distinct kernel AST read back from a recording, with the tests that generated it."""
    digest: bytes
    ast: Node
    devices: set[str] = field(default_factory=set)
    tests: list[str] = field(default_factory=list)   # the first few tests seen generating it


def start_recording(directory: str | os.PathLike) -> None:
    """Record every kernel this process compiles from now on into `directory` (created if needed)."""
    global RECORDING, _directory, _file
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    if _file is not None and _directory != path.resolve():
        _file.close()   # recording moves to another directory
        _file = None
    _directory = path.resolve()
    RECORDING = True


def stop_recording() -> None:
    """Stop recording and close this process's file."""
    global RECORDING, _file
    RECORDING = False
    if _file is not None:
        _file.close()
        _file = None


def node_table(ast: Node) -> NodeTable:
    """The AST as a tuple of (op, dtype, source indices, arg, shape) rows, sources before users."""
    order = toposort([ast])
    index = {id(n): k for k, n in enumerate(order)}
    return tuple((n.op, n.dtype, tuple(index[id(s)] for s in n.srcs), n.arg, n.shape) for n in order)


def ast_from_table(table: NodeTable) -> Node:
    """Rebuild the (hash-consed) AST of a node table; the last row is the root."""
    built: list[Node] = []
    for op, dtype, srcs, arg, shape in table:
        built.append(Node.make(op, dtype, tuple(built[k] for k in srcs), arg, shape))
    return built[-1]


def _output_file() -> BinaryIO:
    """This process's recording file (a fork gets a file of its own)."""
    global _file, _file_pid
    pid = os.getpid()
    if _file is None or _file_pid != pid:
        assert _directory is not None
        # kept open between records (closed by stop_recording or at exit)
        _file = open(_directory / f"kernels-{pid}.pkl", "ab")   # noqa: SIM115
        _file_pid = pid
    return _file


def record(ast: Node, device: str) -> None:
    """Append one kernel AST (if this process has not recorded an equal one) with the running test."""
    payload = pickle.dumps(node_table(ast), protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.blake2b(payload, digest_size=16).digest()
    if digest in _seen:
        return
    _seen.add(digest)
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    out = _output_file()
    pickle.dump((FORMAT_VERSION, digest, payload, device, test), out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()   # a worker killed mid-run still leaves every kernel recorded so far


def _read_file(path: Path):
    """Yield the (digest, payload, device, test) records of one file; a truncated tail is ignored."""
    with open(path, "rb") as f:
        while True:
            try:
                version, digest, payload, device, test = pickle.load(f)
            except EOFError:
                return
            except (pickle.UnpicklingError, ValueError):
                return   # the process died while writing its last record
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: kernel recording format {version}, expected {FORMAT_VERSION}; "
                                 "record the test suite again")
            yield digest, payload, device, test


def load_recorded(directory: str | os.PathLike, max_tests: int = 3) -> list[RecordedKernel]:
    """Every distinct kernel recorded in `directory` (all processes' files), in first-seen order."""
    path = Path(directory)
    files = sorted(path.glob(FILE_PATTERN))
    if not files:
        raise FileNotFoundError(f"no kernel recordings ({FILE_PATTERN}) in {path}: run the tests with "
                                f"--record-kernels {path} (or {ENV_VAR}={path}) first")
    found: dict[bytes, RecordedKernel] = {}
    for file in files:
        for digest, payload, device, test in _read_file(file):
            kernel = found.get(digest)
            if kernel is None:
                kernel = found[digest] = RecordedKernel(digest, ast_from_table(pickle.loads(payload)))
            kernel.devices.add(device)
            if test and test not in kernel.tests and len(kernel.tests) < max_tests:
                kernel.tests.append(test)
    return list(found.values())


if config.RECORD_KERNELS:
    start_recording(config.RECORD_KERNELS)
