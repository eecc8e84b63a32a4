"""A restricted unpickler for CIFAR-10's pickled batches — never plain ``pickle.load``.

CIFAR-10's python tarball stores each batch as a Python-2 pickle of a dict holding a uint8 numpy
array (``data``), a list of ints (``labels``) and byte strings. Unpickling untrusted bytes with
:mod:`pickle` can run arbitrary code, because a pickle may name any importable callable.
:class:`NumpyOnlyUnpickler` resolves only the few globals that numpy array reconstruction needs
and raises :class:`pickle.UnpicklingError` for anything else (``os.system``, ``builtins.eval``…).
Containers (dict, list, tuple, bytes, str, int, float) need no globals at all.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from replibench.errors import DataError

#: (module, name) pairs a pickle may reference; both numpy 1.x and 2.x module spellings
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(str, "latin1")
})


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and plain containers, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data pickle")
        import numpy as np

        if module == "_codecs":
            import _codecs

            return _codecs.encode
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct  # numpy >= 2
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def load_numpy_pickle(data: bytes, *, source: str, encoding: str = "latin1") -> Any:
    """Unpickle ``data`` (bytes from ``source``) with :class:`NumpyOnlyUnpickler`.

    ``encoding="latin1"`` is what Python-2 numpy pickles need (numpy's documented choice); the
    dict keys then come back as ``str``.

    Raises:
        DataError: the pickle references a forbidden global or is malformed; names ``source``.
    """
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DataError(f"{source}: refused or malformed pickle: {error}") from error
