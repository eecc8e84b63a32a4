"""A restricted unpickler for the pickled PyG ``Data`` records inside OC20's IS2RE/IS2RS LMDBs.

Each LMDB value is ``pickle.dumps(torch_geometric.data.Data, protocol=-1)`` (fairchem
``preprocess_ef.py`` / the IS2RE LMDB writers). Unpickling an arbitrary pickle runs arbitrary code,
so :class:`RestrictedUnpickler` resolves only the globals such a record needs, and substitutes
inert stand-ins for most of them:

=====================================================  ============================================
global asked for                                       what it resolves to
=====================================================  ============================================
``torch_geometric.data.data.Data``                     :class:`PygDataRecord` (keeps the attribute
                                                       dict; no PyG import, no PyG code runs)
``torch_geometric.data.storage.GlobalStorage``         :class:`PygStorageRecord` (PyG >= 2 layout)
``torch_geometric.data.data.DataEdgeAttr`` /           :class:`PygAttrPlaceholder` (class marker
``DataTensorAttr``                                     stored in PyG >= 2.4 records)
``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor``  a wrapper that checks its arguments are a
                                                       storage, ints and empty hooks, then builds
                                                       the tensor
``torch.storage._load_from_bytes``                     :func:`load_storage_weights_only` — torch's
                                                       own version calls ``torch.load(...,
                                                       weights_only=False)``; ours uses
                                                       ``weights_only=True``
``collections.OrderedDict``                            ``collections.OrderedDict`` (tensor hooks)
=====================================================  ============================================

Anything else raises :class:`UnsafePickleError` naming the module and name *before* anything is
resolved or imported, so a malicious record (``posix.system``, ``builtins.eval``, …) is refused
without running. Official OC20 records were written with PyG < 2.0 and torch 1.x; which globals
they use was inferred from how those versions pickle (not checked on an official file, none was
available offline): a record that needs another global is rejected with its name, never guessed.
Persistent ids are refused too (plain pickles have none).
"""

from __future__ import annotations

import collections
import io
import pickle
from typing import Any

from replibench.errors import DataError


class UnsafePickleError(DataError):
    """A pickle asked for a global outside the allow-list (or a persistent id)."""

    def __init__(self, module: str, name: str, *, key: str | None = None) -> None:
        self.module, self.name, self.key = module, name, key
        where = f"LMDB key {key!r}: " if key is not None else ""
        super().__init__(f"{where}pickle asks for global {module}.{name}, which is not on the allow-list "
                         f"of replibench.families.oc20.datasets.unpickle; record refused without running it")


class PygDataRecord:
    """Inert stand-in for ``torch_geometric.data.Data``: stores the pickled attribute dict."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"Data state must be a dict, got {type(state).__name__}")
        self.state = dict(state)

    def fields(self) -> dict[str, Any]:
        """Public attributes: PyG < 2 keeps them in ``__dict__``; PyG >= 2 in ``_store._mapping``."""
        state = getattr(self, "state", {})  # NEWOBJ skips __init__; a record without BUILD has none
        store = state.get("_store")
        if isinstance(store, PygStorageRecord):
            return dict(getattr(store, "mapping", {}))
        return {k: v for k, v in state.items() if not k.startswith("_")}


class PygStorageRecord:
    """Inert stand-in for PyG >= 2's ``GlobalStorage`` (state: ``{"_mapping": {...}, "_parent": …}``)."""

    def __init__(self) -> None:
        self.mapping: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("_mapping", {}), dict):
            raise pickle.UnpicklingError("GlobalStorage state must be a dict with a dict '_mapping'")
        self.mapping = dict(state.get("_mapping", {}))


class PygAttrPlaceholder:
    """Marker for PyG's ``DataEdgeAttr`` / ``DataTensorAttr`` classes referenced by PyG >= 2.4."""


def load_storage_weights_only(data: bytes):
    """Replacement for ``torch.storage._load_from_bytes``: the same bytes, ``weights_only=True``."""
    import torch

    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"_load_from_bytes expects bytes, got {type(data).__name__}")
    storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(f"_load_from_bytes payload is a {type(storage).__name__}, not a storage")
    return storage


def _check_tensor_args(storage, storage_offset, size, stride) -> None:
    import torch

    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(f"tensor storage is a {type(storage).__name__}, not a torch storage")
    if not isinstance(storage_offset, int) or not all(isinstance(v, int) for v in (*size, *stride)):
        raise pickle.UnpicklingError("tensor offset, size and stride must be integers")


def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                      metadata=None):
    """Checked ``torch._utils._rebuild_tensor_v2`` (no hooks, no metadata)."""
    from torch._utils import _rebuild_tensor_v2

    _check_tensor_args(storage, storage_offset, size, stride)
    if backward_hooks or metadata:
        raise pickle.UnpicklingError("tensor with backward hooks or metadata refused")
    return _rebuild_tensor_v2(storage, storage_offset, tuple(size), tuple(stride), bool(requires_grad),
                              collections.OrderedDict())


def rebuild_tensor(storage, storage_offset, size, stride):
    """Checked ``torch._utils._rebuild_tensor`` (torch < 1.0 pickles)."""
    from torch._utils import _rebuild_tensor

    _check_tensor_args(storage, storage_offset, size, stride)
    return _rebuild_tensor(storage, storage_offset, tuple(size), tuple(stride))


#: (module, name) → the object the restricted unpickler returns for it. Nothing else resolves.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_geometric.data.data", "Data"): PygDataRecord,
    ("torch_geometric.data.data", "DataEdgeAttr"): PygAttrPlaceholder,
    ("torch_geometric.data.data", "DataTensorAttr"): PygAttrPlaceholder,
    ("torch_geometric.data.storage", "GlobalStorage"): PygStorageRecord,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): load_storage_weights_only,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED_GLOBALS` and no persistent ids."""

    def __init__(self, file, *, key: str | None = None) -> None:
        super().__init__(file)
        self.key = key

    def find_class(self, module: str, name: str):  # noqa: D102 - see class docstring
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(module, name, key=self.key) from None

    def persistent_load(self, pid):  # noqa: D102
        raise UnsafePickleError("<persistent id>", repr(pid)[:80], key=self.key)


def restricted_loads(payload: bytes, *, key: str | None = None) -> Any:
    """Unpickle ``payload`` with :class:`RestrictedUnpickler` (``key`` names the record in errors)."""
    return RestrictedUnpickler(io.BytesIO(payload), key=key).load()
