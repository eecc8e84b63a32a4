"""OC20 IS2RE/IS2RS datasets from the official LMDB tarball (decoded by :mod:`.lmdb`).

``is2res_train_val_test_lmdbs.tar.gz`` holds ``data/is2re/<subset>/<split>/data.lmdb`` (subset
``10k``/``100k``/``all``; the validation splits live under ``all/``, e.g.
``data/is2re/all/val_id/data.lmdb`` as in fairchem's ``configs/oc20/is2re/100k/base.yml``; the
archive's top folder was not checked, so members are matched by that suffix). Test splits have no
public labels and are not converted.

Output: ``<out>/<split>/part-00000.parquet`` (schema :func:`.lmdb.is2re_schema`) for ``train``
and the four validation splits, ``rejects.parquet`` and ``card.json``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from replibench.data.checksum import sha256_file
from replibench.data.download import RemoteFile
from replibench.data.tables import Rejects, write_data_card
from replibench.families.oc20.datasets import sources
from replibench.families.oc20.datasets.lmdb import convert_lmdbs_in_subprocess
from replibench.errors import DataError

#: ``…/is2re/<subset>/<split>/data.lmdb`` inside the IS2RE/IS2RS tarball
LMDB_MEMBER = re.compile(r"(?:^|/)is2re/(?P<subset>10k|100k|all)/(?P<split>[a-z_]+)/data\.lmdb$")


@dataclass(frozen=True)
class IS2REDataset:
    """IS2RE/IS2RS: one training subset plus the four validation splits of the LMDB tarball."""

    name: str
    subset: str  # "10k", "100k" or "all"
    family: str = sources.FAMILY

    @property
    def remote_files(self) -> list[RemoteFile]:
        return [sources.IS2RES_LMDBS]

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", *sources.VAL_SPLITS)

    def wanted(self, member_name: str) -> str | None:
        """The output split for a tar member, or ``None`` if this dataset does not use it."""
        match = LMDB_MEMBER.search(member_name)
        if match is None:
            return None
        if match["split"] == "train" and match["subset"] == self.subset:
            return "train"
        if match["subset"] == "all" and match["split"] in sources.VAL_SPLITS:
            return match["split"]
        return None

    def preprocess(self, raw_files: list[Path], out_dir: Path, *, workers: int = 1,
                   options: dict | None = None) -> dict:
        """Stream the tarball once; convert each wanted ``data.lmdb`` in a child process into
        ``<out>/<split>/part-00000.parquet``; one ``rejects.parquet`` and ``card.json``."""
        from replibench.data.archive import iter_tar_members

        if options:
            raise DataError(f"{self.name}: takes no preprocessing options, got {sorted(options)}")
        if len(raw_files) != 1:
            raise DataError(f"{self.name}: expected 1 raw file ({sources.IS2RES_LMDBS.name}), got {len(raw_files)}")
        archive, out_dir = Path(raw_files[0]), Path(out_dir)
        rejects, rows, summaries, members = Rejects(), {}, {}, {}
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="is2re-spool-", dir=out_dir) as spool:
            for info, handle in iter_tar_members(archive, select=lambda name: self.wanted(name) is not None):
                split = self.wanted(info.name)
                if split in members:
                    raise DataError(f"{archive}: member {info.name!r}: a second LMDB for split {split}")
                with open(Path(spool) / f"{split}.lmdb", "wb") as out:
                    shutil.copyfileobj(handle, out)
                members[split] = info.name
            jobs = [(Path(spool) / f"{split}.lmdb", out_dir / split / "part-00000.parquet",
                     Path(spool) / f"{split}.rejects.parquet") for split in members]
            for split, summary, job in zip(members, convert_lmdbs_in_subprocess(jobs) if jobs else [], jobs):
                rows[split], summaries[split] = summary["rows"], summary
                rejects.entries.extend(_read_rejects(job[2], f"{archive.name}:{members[split]}"))
        missing = [split for split in self.splits if split not in rows]
        if missing:
            raise DataError(f"{archive}: no data.lmdb for splits {missing} (looked for "
                            f"is2re/{self.subset}/train and is2re/all/<val split>)")
        rejects.write(out_dir / "rejects.parquet")
        return write_data_card(
            out_dir / "card.json", dataset=self.name, family=self.family,
            sources=[{"name": archive.name, "url": sources.IS2RES_LMDBS.url, "sha256": sha256_file(archive)}],
            rows=rows, rejected_rows=len(rejects), license=sources.LICENSE, citation=sources.CITATION,
            notes={"synthetic": False, "subset": self.subset, "summaries": summaries,
                   "energy_convention": "energy_relaxed = y_relaxed, relaxed adsorption energy (eV)",
                   "decoding": "restricted unpickler in a child process (replibench.families.oc20.datasets.unpickle)"},
        )


def _read_rejects(path: Path, source: str) -> list[dict]:
    import pyarrow.parquet as pq

    entries = pq.read_table(path).to_pylist()
    for entry in entries:
        entry["source"] = source
    return entries


IS2RE_10K = IS2REDataset("is2re-10k", "10k")
IS2RE_100K = IS2REDataset("is2re-100k", "100k")
IS2RE_ALL = IS2REDataset("is2re-all", "all")
