"""Convert CrysBFN's released accuracy schedules (``cache_files/linear_entropy_alphas_s{N}_{beta1}.pt``)
into the pickle-free JSON file the package ships (``replibench/families/crystals/models/crysbfn_schedules.json``).

Run once, with the project's venv, on a checkout of the authors' repository:

    python tools/crystals/convert_crysbfn_schedules.py /path/to/CrysBFN-checkout

Each ``.pt`` file holds one float32 tensor (N,) of sender accuracies alpha_1..alpha_N; it is read
with ``torch.load(weights_only=True)`` (no arbitrary unpickling) and written as the shortest decimal
strings that round-trip to the same float32 values, with the repository, commit and the sha256 of
every source file. The script then prints the sha256 of the JSON file: paste it into
``replibench.families.crystals.models.bayesian_flow.RELEASED_SCHEDULES_SHA256`` (the loader refuses other bytes).
Only numbers are kept; no upstream code is copied.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = "wu-han-lin/CrysBFN"
OUT = (Path(__file__).resolve().parents[2] / "src" / "replibench" / "families" / "crystals" / "models"
       / "crysbfn_schedules.json")
_NAME = re.compile(r"^linear_entropy_alphas_s(?P<steps>\d+)_(?P<beta1>[0-9.]+)\.pt$")


def main(checkout: Path) -> None:
    import numpy as np
    import torch

    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    schedules, sources = {}, {}
    for path in sorted((checkout / "cache_files").glob("linear_entropy_alphas_s*.pt")):
        match = _NAME.match(path.name)
        if match is None:
            raise SystemExit(f"{path}: name is not linear_entropy_alphas_s<N>_<beta1>.pt")
        tensor = torch.load(path, weights_only=True)
        steps, beta1 = int(match["steps"]), float(match["beta1"])
        if tensor.dtype != torch.float32 or tuple(tensor.shape) != (steps,):
            raise SystemExit(f"{path}: expected float32 ({steps},), found {tensor.dtype} {tuple(tensor.shape)}")
        values = tensor.numpy()
        key = f"s{steps}_{beta1!r}"
        schedules[key] = [np.format_float_positional(v, unique=True, trim="-") for v in values]
        assert np.array_equal(np.asarray(schedules[key], dtype=np.float32), values)  # exact round trip
        sources[key] = {"file": f"cache_files/{path.name}", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    record = {
        "what": "CrysBFN linear-entropy sender accuracies alpha_1..alpha_N (float32, as released)",
        "repo": REPO,
        "commit": commit,
        "generator": "tools/crystals/convert_crysbfn_schedules.py",
        "sources": sources,
        "schedules": schedules,
    }
    # one schedule per line, values as bare JSON numbers (the shortest decimals that read back, via
    # float64, to the same float32), so the file diffs and reads well
    lines = [f'  "{key}": [{", ".join(values)}]' for key, values in schedules.items()]
    head = json.dumps({k: v for k, v in record.items() if k != "schedules"}, indent=1, sort_keys=True)
    text = head[:-2] + ',\n "schedules": {\n' + ",\n".join(lines) + "\n }\n}\n"
    assert json.loads(text)["schedules"].keys() == schedules.keys()
    with tempfile.NamedTemporaryFile("w", dir=OUT.parent, suffix=".json", delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, OUT)
    print(f"wrote {OUT} ({len(text)} bytes), sha256 {hashlib.sha256(text.encode()).hexdigest()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
