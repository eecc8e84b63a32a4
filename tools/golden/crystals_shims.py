"""Import shims for running the crystal upstreams (jiaor17/DiffCSP, wu-han-lin/CrysBFN) in a plain venv.

The upstream model files import their whole training stack. The golden generators only run the
networks, schedules, flows and losses, so:

* ``torch_scatter`` (a compiled extension with no wheel for current torch) is replaced by PyTorch
  Geometric's pure-PyTorch ``torch_geometric.utils.scatter`` / ``softmax``, which have the same
  semantics for the reductions the models use (sum, mean over ``dim=0`` with ``dim_size``);
* ``torch_sparse`` (same) is replaced by a minimal ``SparseTensor`` with the row selection that
  CDVAE's GemNet-T triplet search uses (``_sparse_module``);
* modules only used for data preprocessing, plotting or multiprocessing (pyxtal, ray) are empty
  stubs: touching any of their attributes raises, so a stub can never stand in for exercised code.

Environment: a throw-away venv with torch, torch_geometric, pymatgen, hydra-core, omegaconf,
einops, pytorch-lightning, absl-py, overrides, func-timeout, p_tqdm (see the generators' docstrings);
nothing here is installed into the project.
"""

from __future__ import annotations

import os
import sys
import types


class _Unused:
    """Placeholder for a name imported from a stubbed module: calling or reading it raises."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"golden generator used stubbed {self._name!r}")

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise RuntimeError(f"golden generator used stubbed {self._name}.{attr}")


class _Unexercised(types.ModuleType):
    """A module the golden path must not use: ``from m import x`` works, using ``x`` raises."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unused(f"{self.__name__}.{name}")


def _scatter_module() -> types.ModuleType:
    from torch_geometric.utils import scatter as pyg_scatter
    from torch_geometric.utils import softmax as pyg_softmax

    module = types.ModuleType("torch_scatter")

    def scatter(src, index, dim=-1, out=None, dim_size=None, reduce="sum"):
        if out is not None:
            raise NotImplementedError("torch_scatter shim: out= is not supported")
        return pyg_scatter(src, index, dim=dim, dim_size=dim_size, reduce=reduce)

    module.scatter = scatter
    module.scatter_sum = lambda src, index, dim=-1, out=None, dim_size=None: scatter(src, index, dim, out, dim_size, "sum")
    module.scatter_add = module.scatter_sum
    module.scatter_mean = lambda src, index, dim=-1, out=None, dim_size=None: scatter(src, index, dim, out, dim_size, "mean")
    module.scatter_max = lambda *a, **k: (_ for _ in ()).throw(NotImplementedError("scatter_max"))
    composite = types.ModuleType("torch_scatter.composite")
    composite.scatter_softmax = lambda src, index, dim=0, dim_size=None: pyg_softmax(src, index, num_nodes=dim_size, dim=dim)
    module.composite = composite
    for name in ("segment_coo", "segment_csr"):
        setattr(module, name, lambda *a, _n=name, **k: (_ for _ in ()).throw(NotImplementedError(_n)))
    sys.modules["torch_scatter.composite"] = composite
    return module


def _sparse_module() -> types.ModuleType:
    """``torch_sparse`` with only what GemNet-T's triplet search uses (txie-93/cdvae
    ``gemnet/gemnet.py`` ``get_triplets``): ``SparseTensor(row=, col=, value=, sparse_sizes=)``,
    row selection ``adj[index]`` by a LongTensor, and ``.storage.row()`` / ``.storage.value()``.
    Entries are kept sorted by (row, col) as torch_sparse's CSR storage does (stable sort, so
    duplicate (row, col) entries -- periodic images -- keep their input order); ``adj[index]`` has
    one row per entry of ``index``, holding that row's entries in the same order."""
    import torch

    module = types.ModuleType("torch_sparse")

    class _Storage:
        def __init__(self, row, col, value):
            self._row, self._col, self._value = row, col, value

        def row(self):
            return self._row

        def col(self):
            return self._col

        def value(self):
            return self._value

    class SparseTensor:
        def __init__(self, row, col, value=None, sparse_sizes=None, is_sorted=False):
            num_rows, num_cols = (int(size) for size in sparse_sizes)
            order = torch.sort(row * num_cols + col, stable=True).indices
            self.sparse_sizes = (num_rows, num_cols)
            self.storage = _Storage(row[order], col[order], None if value is None else value[order])

        def __getitem__(self, index):
            if not (isinstance(index, torch.Tensor) and index.dtype == torch.long and index.dim() == 1):
                raise NotImplementedError("torch_sparse shim: only row selection by a 1-D LongTensor")
            counts = torch.bincount(self.storage.row(), minlength=self.sparse_sizes[0])
            starts = torch.cumsum(counts, 0) - counts
            picked_counts = counts[index]
            new_row = torch.repeat_interleave(torch.arange(index.shape[0]), picked_counts)
            within = torch.arange(int(picked_counts.sum())) - (torch.cumsum(picked_counts, 0) - picked_counts)[new_row]
            source = starts[index][new_row] + within
            value = self.storage.value()
            out = SparseTensor.__new__(SparseTensor)
            out.sparse_sizes = (index.shape[0], self.sparse_sizes[1])
            out.storage = _Storage(new_row, self.storage.col()[source], None if value is None else value[source])
            return out

    module.SparseTensor = SparseTensor
    return module


def install(upstream_root: str, unexercised: tuple[str, ...] = ()) -> None:
    """Put the shims in ``sys.modules`` and the upstream checkout first on ``sys.path``;
    ``unexercised`` names upstream modules to replace by stubs (e.g. CrysBFN's
    ``common/linear_acc_search.py``, which ``os.chdir``s to the authors' cluster path on import and
    whose ``AccuracySchedule`` the model files import for commented-out code only)."""
    for name in unexercised:
        sys.modules[name] = _Unexercised(name)
    sys.modules.setdefault("torch_scatter", _scatter_module())
    sys.modules.setdefault("torch_sparse", _sparse_module())
    for name in ("pyxtal", "pyxtal.symmetry", "ray"):
        sys.modules.setdefault(name, _Unexercised(name))
    # CrysBFN's data_utils decorates a preprocessing worker with @ray.remote at import time
    sys.modules["ray"].remote = lambda function: _Unused(f"ray.remote({function.__name__})")
    os.environ.setdefault("PROJECT_ROOT", upstream_root)  # read by the upstreams' common/utils.py
    # ... which first loads the checkout's .env with override=True, and CrysBFN's .env sets
    # PROJECT_ROOT="" (a placeholder): keep the environment as set here
    import dotenv

    dotenv.load_dotenv = lambda *args, **kwargs: False
    sys.path.insert(0, upstream_root)
