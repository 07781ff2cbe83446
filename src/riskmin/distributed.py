"""Several processes through torch.distributed, as `torchrun` launches them.

    torchrun --standalone --nproc-per-node 2 -m riskmin montecarlo lab1 --runs 200

Every process runs the same command; torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR,
...) tells each which one it is. riskmin joins them with gloo on CPU and nccl on GPU. A
Monte-Carlo experiment deals its runs out by seed, each process trains its share with the
vectorized engine, and process 0 gathers the rows, in seed order, and alone prints and writes.
"""

from __future__ import annotations

import datetime
import os

import torch

from .config import RiskminError

TIMEOUT = datetime.timedelta(seconds=float(os.environ.get("RISKMIN_DISTRIBUTED_TIMEOUT", 300)))


def launched() -> bool:
    """Whether this process is one of several that torchrun started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: str = "cpu") -> tuple:
    """(rank, world size), joining the process group first when torchrun started several processes; (0, 1) otherwise."""
    if not launched():
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        try:
            dist.init_process_group(backend, timeout=TIMEOUT)
        except (RuntimeError, ValueError) as error:  # a peer that never came, or a bad address
            raise RiskminError(f"could not join the other riskmin processes ({str(error).splitlines()[0][:160]}); "
                               "start them all with torchrun") from None
    return dist.get_rank(), dist.get_world_size()


def gathered(rows: list) -> list:
    """Every process's rows, in one list on every process; a process that died is a clear error, not a hang."""
    if not launched():
        return rows
    import torch.distributed as dist

    shares = [None] * dist.get_world_size()
    try:
        dist.all_gather_object(shares, rows)
    except RuntimeError as error:
        raise RiskminError(f"another riskmin process stopped before sending its runs ({str(error).splitlines()[0][:160]}); "
                           "see its own error, fix it and start all of them again") from None
    return [row for share in shares for row in share]


def leave() -> None:
    if launched():
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
