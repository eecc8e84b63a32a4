"""OC20 S2EF datasets: raw ``extxyz.xz`` / ``txt.xz`` tarballs → Parquet shards (no pickle).

Each S2EF tarball (train 200K / 2M, and each of the four validation splits) holds numbered pairs
``N.extxyz.xz`` + ``N.txt.xz`` (5,000 frames each in the real data). The archive is streamed once
(:func:`replibench.data.archive.iter_tar_members`); each member is spooled to a temporary folder
until its partner arrives, then the pair is converted — in a process pool when ``workers > 1`` —
to ``<out>/<split>/part-<N>.parquet`` with :func:`~replibench.families.oc20.datasets.frames.s2ef_schema`.
Bad frames go to ``rejects.parquet`` with the file and the 1-based frame number.

Output layout of :meth:`S2EFDataset.preprocess`::

    <out>/train/part-00000.parquet …    one shard per raw pair, named by N
    <out>/val_id/part-….parquet …       and val_ood_ads, val_ood_cat, val_ood_both
    <out>/rejects.parquet  <out>/card.json
"""

from __future__ import annotations

import lzma
import re
import shutil
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replibench.data.checksum import sha256_file
from replibench.data.download import RemoteFile
from replibench.data.tables import Rejects, write_data_card, write_parquet_atomic
from replibench.families.oc20.datasets import sources
from replibench.errors import DataError

#: ``…/N.extxyz.xz`` or ``…/N.txt.xz`` anywhere in the archive
MEMBER = re.compile(r"(?:^|/)(?P<number>\d+)\.(?P<kind>extxyz|txt)\.xz$")
#: Energy convention of the ``energy_ref`` column (what OC20 models train and are scored on).
ENERGY_CONVENTION = "energy = total DFT energy (eV); energy_ref = energy - txt reference energy (adsorption energy, eV)"


@dataclass(frozen=True)
class PairJob:
    """One spooled ``N.extxyz.xz`` + ``N.txt.xz`` pair to convert into ``shard``."""

    number: int
    extxyz_path: Path
    txt_path: Path
    extxyz_name: str  # "<archive>:<member>" for rejects
    txt_name: str
    shard: Path


@dataclass
class PairResult:
    number: int
    rows: int
    rejects: list[dict] = field(default_factory=list)
    sid: np.ndarray | None = None
    fid: np.ndarray | None = None


def convert_pair(job: PairJob, *, remove_inputs: bool = True) -> PairResult:
    """Read one pair with ASE, validate every frame and write its Parquet shard (atomic)."""
    from replibench.families.oc20.datasets.frames import (
        atoms_to_row, parse_extxyz_frame, parse_txt_line, rows_to_table, s2ef_schema, split_extxyz_frames,
    )

    rejects = Rejects()
    try:
        txt_lines = lzma.decompress(job.txt_path.read_bytes()).decode("utf-8").splitlines()
        text = lzma.decompress(job.extxyz_path.read_bytes()).decode("utf-8")
    except (lzma.LZMAError, UnicodeDecodeError) as error:
        raise DataError(f"{job.extxyz_name} / {job.txt_name}: cannot decompress: {error}") from error
    finally:
        if remove_inputs:
            job.extxyz_path.unlink(missing_ok=True)
            job.txt_path.unlink(missing_ok=True)
    txt_lines = [line for line in txt_lines if line.strip()]
    rows: list[dict] = []
    frames_seen = 0
    try:
        for frame_number, frame_text in split_extxyz_frames(text):
            frames_seen = frame_number
            if frame_number > len(txt_lines):
                rejects.add(source=job.extxyz_name, row=frame_number,
                            reason=f"no line {frame_number} in {job.txt_name}")
                continue
            try:
                log = parse_txt_line(txt_lines[frame_number - 1])
            except ValueError as error:
                rejects.add(source=job.txt_name, row=frame_number, reason=str(error), raw=txt_lines[frame_number - 1])
                continue
            try:
                atoms = parse_extxyz_frame(frame_text)
                rows.append(atoms_to_row(atoms, sid=log.sid, fid=log.fid, reference_energy=log.reference_energy))
            except Exception as error:  # noqa: BLE001 - ASE raises many types; each becomes a reject
                rejects.add(source=job.extxyz_name, row=frame_number, raw=frame_text.splitlines()[1][:500]
                            if frame_text.count("\n") > 1 else None,
                            reason=f"random{log.sid},frame{log.fid}: {type(error).__name__}: {error}")
    except ValueError as error:
        rejects.add(source=job.extxyz_name, row=frames_seen + 1, reason=f"rest of the file unreadable: {error}")
    for line_number in range(frames_seen + 1, len(txt_lines) + 1):
        rejects.add(source=job.txt_name, row=line_number, raw=txt_lines[line_number - 1],
                    reason=f"no frame {line_number} in {job.extxyz_name}")
    table = rows_to_table(rows)
    write_parquet_atomic(table, job.shard, schema=s2ef_schema())
    return PairResult(job.number, len(rows), rejects.entries,
                      np.array([r["sid"] for r in rows], np.int64), np.array([r["fid"] for r in rows], np.int64))


def convert_s2ef_archive(archive: Path, split_dir: Path, *, workers: int = 1, spool_dir: Path | None = None,
                         pool: ProcessPoolExecutor | None = None) -> tuple[int, Rejects]:
    """Stream one S2EF tarball into ``split_dir/part-<N>.parquet`` shards.

    ``workers > 1`` converts pairs in a process pool (``pool``, or one made for this archive).

    Returns ``(rows written, rejects)``. Raises :class:`DataError` for an archive without pairs,
    a member whose partner never appears, a number present twice, or a (sid, fid) key that
    occurs twice in the split (the bring-your-own-predictions format is keyed by it).
    """
    split_dir.mkdir(parents=True, exist_ok=True)
    rejects = Rejects()
    pending: dict[int, dict[str, tuple[Path, str]]] = {}
    done_numbers: set[int] = set()
    results: list[PairResult] = []
    spool_root = Path(tempfile.mkdtemp(prefix="s2ef-spool-", dir=spool_dir))
    own_pool = pool is None and workers > 1
    if own_pool:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=_spawn())
    futures = set()
    try:
        for info, handle in _pair_members(archive):
            match = MEMBER.search(info.name)
            if match is None:
                continue
            number, kind = int(match["number"]), match["kind"]
            slot = pending.setdefault(number, {})
            if kind in slot or number in done_numbers:
                raise DataError(f"{archive}: member {info.name!r}: a {kind}.xz file numbered {number} appears twice")
            spooled = spool_root / f"{number}.{kind}.xz"
            with open(spooled, "wb") as out:
                shutil.copyfileobj(handle, out)
            slot[kind] = (spooled, f"{archive.name}:{info.name}")
            if len(slot) < 2:
                continue
            del pending[number]
            done_numbers.add(number)
            job = PairJob(number, slot["extxyz"][0], slot["txt"][0], slot["extxyz"][1], slot["txt"][1],
                          split_dir / f"part-{number:05d}.parquet")
            if pool is None:
                results.append(convert_pair(job))
                continue
            futures.add(pool.submit(convert_pair, job))
            if len(futures) >= 2 * workers:  # bound the spool: wait for a worker to free up
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                results.extend(f.result() for f in finished)
        results.extend(f.result() for f in futures)
    finally:
        if own_pool:
            pool.shutdown(cancel_futures=True)
        shutil.rmtree(spool_root, ignore_errors=True)
    if pending:
        orphans = {n: sorted(slot) for n, slot in pending.items()}
        raise DataError(f"{archive}: members without their partner (number: kinds present): {orphans}")
    if not results:
        raise DataError(f"{archive}: no N.extxyz.xz / N.txt.xz pairs found")
    for result in sorted(results, key=lambda r: r.number):
        for entry in result.rejects:
            rejects.add(**entry)
    _check_unique_keys(archive, results)
    return sum(r.rows for r in results), rejects


def _pair_members(archive: Path):
    """``N.extxyz.xz`` / ``N.txt.xz`` members of ``archive`` in archive order (streaming)."""
    from replibench.data.archive import iter_tar_members

    return iter_tar_members(archive, select=lambda name: MEMBER.search(name) is not None)


def _check_unique_keys(archive: Path, results: list[PairResult]) -> None:
    sid = np.concatenate([r.sid for r in results])
    fid = np.concatenate([r.fid for r in results])
    keys = np.stack([sid, fid], axis=1)
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    if (counts > 1).any():
        repeated = [f"random{s},frame{f}" for s, f in unique[counts > 1][:5]]
        raise DataError(f"{archive}: (sid, fid) keys occur more than once, e.g. {repeated}")


def _spawn():
    import multiprocessing

    return multiprocessing.get_context("spawn")


def preprocess_s2ef_archives(
    archives: list[tuple[str, Path, str]], out_dir: Path, *, dataset: str, workers: int = 1, synthetic: bool = False,
    description: str = "", extra_notes: dict | None = None, license: str = sources.LICENSE,
    citation: str = sources.CITATION,
) -> dict:
    """Convert S2EF tarballs ``[(split, path, url), …]`` into ``<out>/<split>/part-*.parquet`` with
    one ``rejects.parquet`` and ``card.json``; returns the card."""
    out_dir = Path(out_dir)
    rejects = Rejects()
    rows: dict[str, int] = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_spawn()) if workers > 1 else None
    try:
        for split, raw, _ in archives:
            count, split_rejects = convert_s2ef_archive(Path(raw), out_dir / split, workers=workers, pool=pool)
            rows[split] = count
            rejects.entries.extend(split_rejects.entries)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    rejects.write(out_dir / "rejects.parquet")
    notes = {
        "synthetic": synthetic,
        "energy_convention": ENERGY_CONVENTION,
        "forces": "eV/Å, read with apply_constraint=False (fixed atoms keep their forces)",
        "layout": "<split>/part-<N>.parquet, one shard per N.extxyz.xz/N.txt.xz pair",
        "splits": [split for split, _, _ in archives],
        "description": description,
        **(extra_notes or {}),
    }
    return write_data_card(
        out_dir / "card.json", dataset=dataset, family=sources.FAMILY,
        sources=[{"name": Path(raw).name, "url": url, "sha256": sha256_file(raw)} for _, raw, url in archives],
        rows=rows, rejected_rows=len(rejects), license=license, citation=citation, notes=notes,
    )


@dataclass(frozen=True)
class S2EFDataset:
    """An official S2EF dataset: one train tarball plus the four validation tarballs, each a split."""

    name: str
    split_files: tuple[tuple[str, RemoteFile], ...]  # (split, remote file), in remote_files order
    description: str = ""
    family: str = sources.FAMILY

    @property
    def remote_files(self) -> list[RemoteFile]:
        return [remote for _, remote in self.split_files]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(split for split, _ in self.split_files)

    def preprocess(self, raw_files: list[Path], out_dir: Path, *, workers: int = 1,
                   options: dict | None = None) -> dict:
        """Dataset contract: raw tarballs (in ``remote_files`` order) → Parquet folder + card."""
        if options:
            raise DataError(f"{self.name}: takes no preprocessing options, got {sorted(options)}")
        if len(raw_files) != len(self.split_files):
            raise DataError(f"{self.name}: expected {len(self.split_files)} raw files "
                            f"({[r.name for r in self.remote_files]}), got {len(raw_files)}")
        archives = []
        for (split, remote), raw in zip(self.split_files, raw_files):
            if Path(raw).name != remote.name:
                raise DataError(f"{self.name}: raw file {raw} is not {remote.name} (split {split})")
            archives.append((split, Path(raw), remote.url))
        return preprocess_s2ef_archives(archives, out_dir, dataset=self.name, workers=workers,
                                        description=self.description)


_VAL = tuple((split, sources.S2EF_VAL[split]) for split in sources.VAL_SPLITS)
S2EF_200K = S2EFDataset("s2ef-200k", (("train", sources.S2EF_TRAIN_200K), *_VAL),
                        description="OC20 S2EF train 200K + the four S2EF validation splits")
S2EF_2M = S2EFDataset("s2ef-2m", (("train", sources.S2EF_TRAIN_2M), *_VAL),
                      description="OC20 S2EF train 2M + the four S2EF validation splits (Gaunt paper setting)")
