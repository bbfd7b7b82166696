"""Dataset pickles that cannot run code: scanned before learn2learn opens them, and the
project's own loads through a restricted unpickler.

miniImageNet and tieredImageNet come as pickles from mirrors, and unpickling runs whatever
callable the file names (``os.system`` through ``__reduce__``). A dataset needs numpy arrays,
dicts, lists, strings and numbers only, so a file may name only the globals that rebuild
those; anything else is refused, naming the file and the global, before a byte is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import pickletools
from pathlib import Path

from genie_plugin.data.specs import DatasetError

#: Every global a dataset pickle may name: numpy's array/dtype/scalar rebuilders (numpy 1 and 2
#: module names) and the builtins Python 2 pickles of plain objects use.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
        ("builtins", "bytearray"),
        ("__builtin__", "bytearray"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
    }
)

_STRING_OPS = {
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8",
}  # fmt: skip


def pickle_globals(path: str | os.PathLike) -> set[tuple[str, str]]:
    """The (module, name) pairs a pickle file would import, read from its opcodes without
    unpickling. A ``STACK_GLOBAL`` whose names are not plain strings pushed just before is
    reported as ``("?", "?")`` (refused: it cannot be checked)."""
    found: set[tuple[str, str]] = set()
    memo: dict[int, object] = {}
    recent: list[object] = []  # what the last opcodes pushed, when it was a string
    with open(path, "rb") as fh:
        try:
            for op, arg, _pos in pickletools.genops(fh):
                name = op.name
                if name == "GLOBAL" or name == "INST":
                    module, _, attr = str(arg).partition(" ")
                    found.add((module, attr))
                    recent.append(None)
                elif name == "STACK_GLOBAL":
                    a, b = recent[-2:] if len(recent) >= 2 else (None, None)
                    found.add((a, b) if isinstance(a, str) and isinstance(b, str) else ("?", "?"))
                    recent.append(None)
                elif name in _STRING_OPS:
                    recent.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
                elif name == "MEMOIZE":
                    memo[len(memo)] = recent[-1] if recent else None
                elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                    memo[int(arg)] = recent[-1] if recent else None
                elif name in ("BINGET", "LONG_BINGET", "GET"):
                    recent.append(memo.get(int(arg)))
                elif name in ("FRAME", "PROTO"):
                    continue
                else:
                    recent.append(None)
                if len(recent) > 8:
                    del recent[:-8]
                if name == "STOP":
                    break
        except (ValueError, EOFError) as exc:  # not a pickle, or cut short
            raise DatasetError(
                f"{path}: not a readable pickle ({exc}); download it again"
            ) from None
    return found


def _memo_path(path: Path) -> Path:
    from genie_plugin.paths import cache_root

    st = path.stat()
    key = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return cache_root() / "pickle-scans" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def check_dataset_pickle(path: str | os.PathLike) -> None:
    """Refuse a pickle that names any global outside :data:`ALLOWED_GLOBALS`, before anything
    unpickles it. Scanned once per (file, size, mtime): a multi-GB tieredImageNet file costs
    its read once."""
    from genie_plugin.io import atomic_write_text

    path = Path(path)
    memo = _memo_path(path)
    if memo.is_file():
        return
    bad = sorted(pickle_globals(path) - ALLOWED_GLOBALS)
    if bad:
        shown = ", ".join(f"{m}.{n}" for m, n in bad[:3])
        raise DatasetError(
            f"{path}: this pickle would call {shown} when loaded — a dataset pickle holds only "
            "numpy arrays, dicts, lists and strings, so it is refused unopened; replace it with "
            "a copy from the dataset's source (docs/benchmarks.md, Datasets)"
        )
    atomic_write_text(memo, json.dumps({"file": str(path), "ok": True}))


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        if module in ("copy_reg", "__builtin__"):
            module = {"copy_reg": "copyreg", "__builtin__": "builtins"}[module]
        return super().find_class(module, name)


def load_restricted(path: str | os.PathLike, **kwargs):
    """``pickle.load`` that can rebuild numpy arrays and plain containers only."""
    with open(path, "rb") as fh:
        try:
            return _Restricted(fh, **kwargs).load()
        except pickle.UnpicklingError as exc:
            raise DatasetError(
                f"{path}: refused ({exc}); a dataset pickle holds only arrays, dicts, lists and "
                "strings — replace it with a copy from the dataset's source"
            ) from None
