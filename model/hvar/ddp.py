"""Data-parallel training under torchrun: one process per GPU (NCCL), or CPU processes (gloo).

    torchrun --nproc_per_node 8 -m hvar.train_transformer ...

Each process computes the loss on its share of the global batch; DDP averages the gradients, so the
update equals one process's on the whole batch (tested with two CPU processes).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun: one process per GPU (NCCL), or gloo on the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


def wrap_ddp(module: torch.nn.Module, device: torch.device, world: int) -> torch.nn.Module:
    if world == 1:
        return module
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None
    )
