"""Write a golden-output fixture: arrays computed by the authors' released code, plus where they came from.

Every generator in ``tools/golden/`` takes the path of an upstream checkout on its command line,
imports the upstream modules from there (nothing is copied into this project: only the numbers
are kept), runs them on fixed weights and a fixed input in float64, and calls
:func:`write_fixture`. The fixture is a plain ``.npz`` (no pickled objects: it is read with
``allow_pickle=False``) whose ``__meta__`` entry is a JSON string with

* ``repo`` and ``commit`` — the upstream repository (``owner/name``) and the 40-hex commit the
  numbers were computed at;
* ``weight_map`` — upstream parameter name → our parameter name (with the transform, if any,
  e.g. ``"transpose"``), so the test copies the same weights into our model;
* ``generator`` — the script that wrote it, and ``notes`` — anything a reader needs (dtype,
  settings, what is compared).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

META_KEY = "__meta__"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def upstream_commit(checkout: Path) -> str:
    """The commit an upstream checkout (a work tree or a bare git directory) is at."""
    out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def write_fixture(path: Path, arrays: dict[str, Any], *, repo: str, commit: str,
                  weight_map: dict[str, str], generator: str, notes: str = "") -> Path:
    """Write ``arrays`` and the provenance record to ``path`` (atomically)."""
    if not _COMMIT.match(commit):
        raise ValueError(f"commit must be 40 lowercase hex digits, got {commit!r}")
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY!r} is reserved for the provenance record")
    meta = {"repo": repo, "commit": commit, "weight_map": weight_map, "generator": generator, "notes": notes}
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in payload.items():
        if value.dtype == object:
            raise ValueError(f"array {name!r} has dtype object; fixtures hold numbers only")
    payload[META_KEY] = np.array(json.dumps(meta, sort_keys=True))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as handle:
        tmp = Path(handle.name)
    try:
        np.savez_compressed(tmp, **payload)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
