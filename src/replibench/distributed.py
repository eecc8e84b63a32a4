"""Data-parallel training over several processes (one per GPU) inside one job, for the trainer.

How a run gets several processes: ``replibench train --processes N`` (the train rule passes the
GPUs the run asks for in ``config.yaml``'s ``resources.train.gpus``) re-executes itself under
``torchrun --standalone --nproc_per_node=N``; torchrun sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address, and :func:`init_process_group` joins the group with
``nccl`` on CUDA and ``gloo`` on CPU.

What every rank does (see :func:`replibench.train.train`): the same seed, the same epoch order and
the same global batch of ``batch_size`` examples; each rank takes its contiguous shard of that
batch (:func:`shard`), computes the task's loss on it, and :func:`all_reduce_gradients` sums the
gradients weighted by each shard's share of the batch, so every rank holds the gradient of the
global batch's mean loss (exact for losses that are means over examples; models with batch
statistics — BatchNorm, TimesNet's FFT periods — see their shard, as in any data-parallel run).
Rank 0 alone validates, writes checkpoints and outputs; its decisions and a resumed checkpoint
are broadcast, so all ranks stay identical.

With one process (the default) :class:`World` has size 1 and none of this runs: single-process
training takes exactly the code path it took before.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["World", "all_reduce_gradients", "any_rank", "barrier", "broadcast_object", "broadcast_state",
           "current_world", "init_process_group", "launched_by_torchrun", "shard", "torchrun_command"]


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes of one run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def torchrun_command(argv: list[str], processes: int) -> list[str]:
    """The command that runs ``replibench <argv>`` as ``processes`` ranks on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "replibench.cli", *argv]


def init_process_group(expected_size: int) -> World:
    """Join the process group torchrun set up (gloo on CPU, nccl on CUDA); size 1 without torchrun."""
    import torch
    import torch.distributed as dist

    if not launched_by_torchrun():
        return World()
    size = int(os.environ["WORLD_SIZE"])
    if size != expected_size:
        from replibench.errors import ConfigError

        raise ConfigError(f"torchrun started {size} processes but the run asks for {expected_size}")
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available() and torch.cuda.device_count() < int(os.environ.get("LOCAL_WORLD_SIZE", size)):
        from replibench.errors import ConfigError

        raise ConfigError(f"{size} processes (one per GPU) but this job sees {torch.cuda.device_count()} GPU(s) "
                          f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}); ask SLURM for as many GPUs")
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank)


def current_world() -> World:
    """The process group this process belongs to (size 1 when there is none)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return World(rank=dist.get_rank(), size=dist.get_world_size(),
                     local_rank=int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def shard(indices, world: World):
    """This rank's contiguous part of a global batch's example indices (sizes differ by at most 1)."""
    import torch

    return torch.tensor_split(indices, world.size)[world.rank]


def broadcast_object(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank (pickled: only for values this program made itself)."""
    import torch.distributed as dist

    if world.size == 1:
        return value
    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_state(tensors, world: World) -> None:
    """Overwrite every rank's tensors (e.g. freshly initialised weights) with rank 0's, in place."""
    import torch.distributed as dist

    if world.size == 1:
        return
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


def any_rank(flag: bool, world: World, device) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. a stop signal arrived)."""
    import torch
    import torch.distributed as dist

    if world.size == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return bool(value.item() > 0)


def barrier(world: World) -> None:
    import torch.distributed as dist

    if world.size > 1:
        dist.barrier()


def all_reduce_gradients(parameters, *, weight: float, loss):
    """Replace each gradient by the sum over ranks of ``weight × gradient`` and return the same
    weighted sum of ``loss`` (the global batch's loss), where ``weight`` is this rank's share of
    the global batch's examples. A parameter without a gradient on every rank keeps none (as in
    one process, the optimiser then skips it); one that lacks it on some ranks counts zeros there.
    One collective per gradient dtype and device, plus one small one for presence and loss.
    """
    import torch
    import torch.distributed as dist

    params = [p for p in parameters if p.requires_grad]
    extra = torch.tensor([0.0 if p.grad is None else 1.0 for p in params] + [0.0], device=loss.device)
    extra[-1] = loss.detach().float() * weight
    dist.all_reduce(extra)  # (params + 1,): ranks holding each gradient, then the global batch loss
    buckets: dict[tuple[Any, Any], list[int]] = {}
    for index, param in enumerate(params):
        buckets.setdefault((param.device, param.dtype), []).append(index)
    for members in buckets.values():
        flat = torch.cat([(params[i].grad if params[i].grad is not None else torch.zeros_like(params[i])).reshape(-1)
                          for i in members]) * weight  # (sum of numels,)
        dist.all_reduce(flat)
        offset = 0
        for i in members:
            numel = params[i].numel()
            params[i].grad = flat[offset:offset + numel].view_as(params[i]).clone()
            offset += numel
    for param, holders in zip(params, extra[:-1].tolist()):
        if holders == 0.0:
            param.grad = None
    return extra[-1]
