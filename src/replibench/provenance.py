"""Provenance recorded with every result: enough to rebuild the environment and rerun the job."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from replibench.data.checksum import sha256_file

TRACKED_PACKAGES = ("torch", "numpy", "pandas", "pyarrow", "replibench", "snakemake",
                    "pymatgen", "smact", "matminer", "e3nn", "torch_geometric", "ase")


def git_commit(cwd: Path | None = None) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether tracked files differ from it), or (None, None) outside a repository."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=cwd).returncode != 0
        return commit, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, None


def source_sha256(package_dir: Path | None = None) -> str:
    """SHA-256 over the replibench package's source (every ``.py``, ``.yaml`` and ``.json`` file,
    by relative path and content): changes with any edit, committed or not, so a checkpoint or a
    result can be tied to the exact code even in a dirty tree."""
    import hashlib

    root = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".yaml", ".json") and path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    """What code is running: the git commit of the package's checkout (``None`` outside a
    repository), whether tracked files differ from it, and :func:`source_sha256`."""
    commit, dirty = git_commit(Path(__file__).resolve().parent)
    return {"commit": commit, "commit_dirty": dirty, "source_sha256": source_sha256()}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def collect(*, settings_sha256: str, data_sha256: dict[str, str], device: str,
            lock_file: Path | None) -> dict[str, Any]:
    commit, dirty = git_commit()
    return {
        "commit": commit,
        "commit_dirty": dirty,
        "config_sha256": settings_sha256,
        "data_sha256": data_sha256,
        "lock_sha256": sha256_file(lock_file) if lock_file is not None and Path(lock_file).is_file() else None,
        "packages": package_versions(),
        "device": device_name(device),
        "hostname": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
