"""Several processes through torch.distributed, as `torchrun` launches them.

    torchrun --standalone --nproc-per-node 2 -m riskmin train lab1 --epochs 50
    riskmin train lab1 --epochs 50 --nproc 2          # the same: riskmin starts torchrun's launcher
    torchrun --standalone --nproc-per-node 2 -m riskmin montecarlo lab1 --runs 200

Every process runs the same command; torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR,
...) tells each which one it is. riskmin joins them with gloo on CPU and nccl on GPU. One
model trains as a `Team`: DistributedDataParallel over each process' share of every global
batch. A Monte-Carlo experiment deals its runs out by seed, each process trains its share
with the vectorized engine, and process 0 gathers the rows, in seed order. Process 0 alone
prints and writes.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
from typing import Optional

import torch

from .config import RiskminError
from ._data._inputs import each_input

__all__ = ["ProcessLost", "launched", "rank"]

TIMEOUT = "RISKMIN_DISTRIBUTED_TIMEOUT"  # seconds the processes wait for one another (default 300), read when they join


def launched() -> bool:
    """Whether this process is one of several that torchrun started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    """This process' number among those torchrun started (0 when alone), without joining them."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def resume_command(directory, world: Optional[int] = None) -> str:
    """The command that continues the run in `directory` with `world` processes, by default as many as train now: a
    checkpoint is resumed by as many as wrote it."""
    from ._paths import resume_line, shell_word

    now = int(os.environ.get("WORLD_SIZE", "1"))
    world = world or now
    if world == 1 or world != now or local_processes() == world:  # on this machine, where --nproc starts them
        return resume_line(directory, world)
    return f"torchrun with the options that started these {world} processes, -m riskmin train --resume " + shell_word(
        directory
    )


def start(count: int, argv: list) -> tuple:
    """Run `riskmin <argv>` in `count` processes on this machine, as `torchrun --standalone` would: (their exit status,
    the sentence saying which one a signal ended, or None).

    Each process prints its own errors; a failed one ends the others, and the status is the
    first failure's, so bad input still exits with 2. The processes die with this launcher
    (`follow_launcher`), even when it is killed outright.
    """
    import signal
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=count,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    with launching() as errors:
        try:
            elastic_launch(config, sys.executable)("-m", "riskmin", *argv)
        except ChildFailedError as failed:
            first = min(failed.failures.values(), key=lambda failure: failure.timestamp)
            left_behind(errors)
            if first.exitcode > 0:
                return first.exitcode, said_by(errors, first.local_rank)
            return 1, f"riskmin process {first.local_rank} was ended by {signal.Signals(-first.exitcode).name}"
        except SignalException:  # Ctrl-C or kill: the processes got it too, saved where they were, said how to resume
            left_behind(errors)  # unless one was ended before it saved anything
            return 130, None
    return 0, None


def said_by(errors: str, rank: int):
    """The mistake that ended the processes, as the first to fail kept it in the folder `errors` (another's when that
    one kept none); None when none kept one."""
    from pathlib import Path

    kept = sorted((p for p in Path(errors).iterdir() if p.name.isdigit()), key=lambda p: (p.name != str(rank), p.name))
    return kept[0].read_text() if kept else None


def made_for_launcher(attempt) -> None:
    """Under `--nproc`, tell the launcher what process 0's `attempt` at a run makes (an Attempt), which a launch that
    fails with nothing worth keeping leaves to the launcher to undo: a process that a failure elsewhere ended cannot
    undo its own."""
    errors = os.environ.get(ERRORS)
    if errors and launched():
        import json
        from pathlib import Path

        from ._files import atomic_write

        atomic_write(Path(errors) / MADE, json.dumps(attempt.as_json()).encode())


def left_behind(errors: str) -> None:
    """Undo what the processes of a failed launch made (made_for_launcher), unless something in it is worth keeping
    or a process holds it."""
    import json
    from pathlib import Path

    from ._files import lock_holder
    from ._runs._rundir import Attempt

    told = Path(errors) / MADE
    if not told.is_file():
        return
    attempt = Attempt.from_json(json.loads(told.read_text()))
    if attempt.folder.is_dir() and lock_holder(attempt.folder) is None:
        attempt.undone()


def kept_for_launcher(message: str) -> bool:
    """Under `--nproc`, keep the mistake that ends this process for the launcher, which says it once (the first process
    to fail would otherwise end the others before process 0 said it); whether it was kept."""
    errors = os.environ.get(ERRORS)
    if not errors or not launched():
        return False
    from ._files import atomic_write
    from pathlib import Path

    atomic_write(Path(errors) / os.environ.get("RANK", "0"), message.encode())
    return True


def failed_elsewhere() -> bool:
    """Under `--nproc`, whether another process kept the mistake that ended it for the launcher (kept_for_launcher):
    the launcher then stops this one, and says that mistake itself."""
    errors = os.environ.get(ERRORS)
    if not errors or not launched() or not os.path.isdir(errors):
        return False
    mine = os.environ.get("RANK", "0")
    return any(name.isdigit() and name != mine for name in os.listdir(errors))


LAUNCHER = "RISKMIN_LAUNCHER"  # the process id of the `--nproc` launcher, in the environment of the processes it starts
ERRORS = "RISKMIN_ERRORS"  # the folder where its processes keep the mistake that ends them, for the launcher to say
MADE = "made.json"  # the file in that folder that names the run folder process 0 made


@contextlib.contextmanager
def launching():
    """While `start` launches: the environment its processes inherit (one OpenMP thread unless the user chose, as
    riskmin sets each process' threads itself; the launcher's process id, for `follow_launcher`), and torch's elastic
    loggers quiet, as the processes say what went wrong themselves. Both are put back after, so that the process that
    launched is left as it was."""
    import logging
    import tempfile

    errors = tempfile.TemporaryDirectory(prefix="riskmin-errors-")
    inherited = {
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        LAUNCHER: str(os.getpid()),
        ERRORS: errors.name,
    }
    before = {name: os.environ.get(name) for name in inherited}
    loggers = [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith("torch.distributed.elastic")
    ]
    levels = [logger.level for logger in loggers]
    os.environ.update(inherited)
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield errors.name
    finally:
        errors.cleanup()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


PR_SET_PDEATHSIG = 1  # from Linux's <linux/prctl.h>


def follow_launcher() -> None:
    """In a process that `--nproc` started, ask Linux to send it SIGTERM when its launcher ends, however it ends: a
    launcher killed outright (SIGKILL) cannot stop its processes itself, which would train on as orphans holding the
    run's lock. SIGTERM is what a launcher that is asked to stop sends them: a training run saves a checkpoint at a step
    all its processes agree on and leaves, saying how to resume. Elsewhere (another platform, torchrun started by hand,
    a process alone) it does nothing.

    The signal follows the thread that started the process; torch's elastic agent starts them from the launcher's main
    thread, which lives as long as the launcher. Outside a run's steps the signal stops the process as Ctrl-C does
    (_main.terminated_as_interrupted), so that it lets go of what it holds (a run's lock) and undoes what it made.
    """
    import ctypes
    import signal
    import sys

    launcher = os.environ.get(LAUNCHER)
    if not launcher or not launched() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # refused (a sandbox): the process lives as before
    if os.getppid() != int(launcher):  # the launcher ended before the call above, so no signal will come
        os.kill(os.getpid(), signal.SIGTERM)


def shared(value):
    """Process 0's `value` on every process of a torchrun; `value` itself in a process on its own."""
    if not launched():
        return value
    box = [value]
    import torch.distributed as dist

    try:
        dist.broadcast_object_list(box, src=0)
    except RuntimeError as error:
        raise ProcessLost(
            "riskmin process 0 stopped before it sent what the others wait for "
            f"({error_headline(error)}); see its error, fix it and start all of them again"
        ) from None
    return box[0]


def error_headline(error: Exception) -> str:
    """The first line of an error's message, cut to 200 characters: what a sentence of riskmin's quotes of it."""
    return (str(error).splitlines() or [""])[0][:200]


def join(device: str = "cpu") -> tuple:
    """(rank, world size), joining the process group first when torchrun started several processes; (0, 1) otherwise."""
    if not launched():
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        gpu = (device.startswith("cuda") or device == "auto") and torch.cuda.is_available()
        backend = "nccl" if gpu else "gloo"
        if gpu:  # each process its own GPU, before nccl picks the current one for all of them
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        try:
            timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT, 300)))
            dist.init_process_group(backend, timeout=timeout, **restarted_store(timeout))
        except (RuntimeError, ValueError) as error:  # a peer that never came, or a bad address
            raise ProcessLost(
                f"could not join the other riskmin processes ({error_headline(error)}); start them all with torchrun"
            ) from None
        # the group riskmin joined is left at exit, also by a script of one's own that calls fit: left to the
        # interpreter's teardown, its threads may end the process with "terminate called without an active exception"
        atexit.register(leave)
    return dist.get_rank(), dist.get_world_size()


def restart_attempt() -> int:
    """How many times torchrun started this process's group again after one of them failed (0: the first start)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def restarted_store(timeout: datetime.timedelta) -> dict:
    """What joins the processes that torchrun started again (--max-restarts) after one of them failed: a store whose
    keys are this attempt's alone. torchrun's agent keeps one store across attempts, and the group's addresses that
    the failed attempt left there would send the new processes to ports nobody listens on any more (measured with
    torch 2.13: every restart failed to join). The first attempt joins as torchrun sets it up: nothing is given."""
    attempt = restart_attempt()
    if not attempt:
        return {}
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # the agent serves the store, else process 0 does
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world,
        is_master=rank == 0 and not agent,
        timeout=timeout,
        multi_tenant=not agent,
    )
    return {"store": dist.PrefixStore(f"riskmin/attempt-{attempt}", store), "rank": rank, "world_size": world}


def gathered(rows: list) -> list:
    """Every process's rows, in one list on every process; a process that died is a clear error, not a hang."""
    if not launched():
        return rows
    import torch.distributed as dist

    shares: list = [None] * dist.get_world_size()  # each process's rows, once gathered
    try:
        dist.all_gather_object(shares, rows)
    except RuntimeError as error:
        raise ProcessLost(
            f"another riskmin process stopped before sending its runs ({error_headline(error)}); "
            "see its own error, fix it and start all of them again"
        ) from None
    return [row for share in shares for row in share]


def leave() -> None:
    if launched():
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def local_processes() -> int:
    """How many processes torchrun started on this machine: they share its cores."""
    return max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)


def training_device(device: torch.device) -> torch.device:
    """Under torchrun each process takes its own GPU, the one its LOCAL_RANK names."""
    if launched() and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


class ProcessLost(RiskminError):
    """Another process of the run stopped; unlike errors in what was asked, every process reports this one."""


def lost(error: Exception) -> ProcessLost:
    return ProcessLost(
        f"another riskmin process stopped in the middle of training ({error_headline(error)}); "
        "see its own error, fix it and start all of them again (add --resume RUN to continue from the "
        "last checkpoint)"
    )


# steps between exchanges of the interrupt flag: one exchange costs about a step's time on a small model
INTERRUPT_EVERY = 16


class Alone:
    """The team of a process on its own: it shards nothing, sums nothing and hears from no other process."""

    rank, world, first = 0, 1, True

    def shard(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def steps(self, batches):
        return batches

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def scaled(self, loss_fn, batches):
        return loss_fn

    def add(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def decided(self, value: bool) -> bool:
        return value

    def interrupted(self, local: bool, step: int) -> bool:
        return local

    def finish_exchange(self) -> None:
        pass

    def watched(self):
        return contextlib.nullcontext()

    def to_first(self, value) -> list:
        return [value]

    def wait_for_first(self) -> None:
        pass


class Team:
    """The processes that train one model together, as one training step sees them.

    Every process holds all the rows and draws the same order; of each global batch, process
    `rank` takes every `world`-th row from its `rank`-th on, so the global batch and the
    sequence of global batches are those of one process. Gradients are averaged by
    DistributedDataParallel; `scaled` weighs each process' mean loss by its share of the
    batch, so that the average is the global batch's mean even when the shares differ.
    Validation sums are added across processes; decisions (stop, interrupt) come from
    process 0, so that all of them leave the loop at the same step.
    """

    def __init__(self, rank: int, world: int, device: torch.device):
        import torch.distributed as dist

        self.dist, self.rank, self.world, self.device = dist, rank, world, device
        # interrupt flags travel on a CPU group, asynchronously, so a GPU run never waits on them
        self.flags = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
        self.flag, self.pending = torch.zeros(1), None

    @property
    def first(self) -> bool:
        return self.rank == 0

    def shard(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[self.rank :: self.world]

    def steps(self, batches):
        """This process' share of each of the global `batches`."""
        return Sharded(batches, self)

    def watched(self):
        return LinkWatch(self)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def scaled(self, loss_fn, batches):
        """The loss of this process' rows, weighed so that DDP's average over processes is the global batch's mean."""

        def loss(output, y):
            if not len(y):  # fewer rows in the batch than processes: take part with a zero gradient
                return output.sum() * 0.0
            value = loss_fn(output, y)
            return value if batches.scale == 1.0 else value * batches.scale

        return loss

    # The exchanges below run inside `watched`, which turns a broken link (a process that died) into ProcessLost.

    def add(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` summed over the processes, in place."""
        self.dist.all_reduce(tensor)
        return tensor

    def decided(self, value: bool) -> bool:
        """Process 0's `value`, on every process."""
        flag = torch.tensor([float(value)], device=self.device)
        self.dist.broadcast(flag, 0)
        return bool(flag.item())

    def interrupted(self, local: bool, step: int) -> bool:
        """Whether any process was interrupted, as of an earlier step: the same answer on all of them.

        Every INTERRUPT_EVERY steps each process sends its flag without waiting, and reads the
        sum sent the time before; so all leave at the same step, at most twice that many steps
        after the signal, and the exchange costs neither a wait nor, on most steps, anything.
        """
        if step % INTERRUPT_EVERY:
            return False
        agreed = False
        if self.pending is not None:
            self.pending.wait()
            agreed = bool(self.flag.item())
        self.flag.fill_(float(local))
        self.pending = self.dist.all_reduce(self.flag, group=self.flags, async_op=True)
        return agreed

    def finish_exchange(self) -> None:
        """Finish the flag exchange still in flight before the processes talk about anything else."""
        if self.pending is not None:
            self.pending.wait()
            self.pending = None

    def to_first(self, value):
        """Every process' `value`, as a list on process 0 (None elsewhere)."""
        values = [None] * self.world if self.first else None
        self.dist.gather_object(value, values, dst=0)
        return values

    def wait_for_first(self) -> None:
        """Return on every process once process 0 has come here too (it finished what the others wait for)."""
        with self.watched():
            self.decided(True)


class LinkWatch:
    """While active, an error of the link between the processes (a peer that died) becomes `ProcessLost`."""

    def __init__(self, team):
        self.team = team

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if self.team is not None and isinstance(error, RuntimeError) and broken(error):
            raise lost(error) from None
        return False


def broken(error: RuntimeError) -> bool:
    """Whether `error` came from torch.distributed's link rather than from the model or the data."""
    import torch.distributed as dist

    text = str(error)
    return isinstance(error, getattr(dist, "DistError", ())) or any(
        word in text for word in ("gloo", "NCCL", "Connection", "connection")
    )


class Sharded:
    """This process' part of each global batch of `batches`, and its share (`scale`) of the batch's mean loss."""

    def __init__(self, batches, team: Team):
        self.batches, self.team, self.scale = batches, team, 1.0

    def __iter__(self):
        team = self.team
        for x, y in self.batches:
            mine = len(range(team.rank, len(y), team.world))
            self.scale = mine * team.world / len(y)
            yield each_input(lambda t: team.shard(t).contiguous(), x), team.shard(y).contiguous()


def team(device: torch.device):
    """The processes that train one model together under torchrun; `Alone` in a process on its own."""
    if not launched():
        return Alone()
    rank, world = join(str(device))
    return Team(rank, world, device)
