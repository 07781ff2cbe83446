"""The vectorized Monte-Carlo engine: R runs stacked and trained as one model.

The replicas' weights are stacked (`torch.func.stack_module_state`) and trained through
`vmap(functional_call)`, sharing one copy of the data. Each replica keeps its own index
tensors and its own batch-order generator; elementwise optimizers act on the stacked
parameters exactly as on R separate ones. Runs are judged by the rules `fit` uses
(policy.py) and measured by its metric code (metrics.py), element by element; a run that
stops early or diverges leaves the stack, so an epoch costs what the runs still training
need. `refusal` says when this cannot match `fit` exactly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Optional, Union, cast

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .. import models
from ..config import Config, RiskminError
from ..data import Data, draw_order, rows_at, schedule
from .._training._checks import Probe, check_model
from .._training._losses import check_bce_outputs, least_squares_test_loss, make_loss
from ..metrics import evaluation_sums, finish_metrics, loss_units
from .._training._optim import (
    PerRun,
    PerRunSchedule,
    accumulation_shares,
    make_optimizer,
    make_scheduler,
    per_run_supported,
    weight_decay,
)
from ..policy import Judge, judged, monitored, reports_closed_form
from .._training._prepare import order_seed, resolve_device
from .._data._scaling import Scaling

ACTIVATION_BUDGET = 2**28  # bytes of stacked activations the automatic chunk size aims for
EVAL_FLOATS = 2**22  # floats of input and activations one evaluation pass may gather across all replicas


def model_for(model, seed: int):
    """What `fit` should get for the run on `seed`: the name, or a fresh module: built by the factory (or class) under
    that seed, or a deep copy of the module given, its parameters drawn again under that seed."""
    if isinstance(model, str):
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return reinitialized(model) if isinstance(model, nn.Module) else model()


def reinitialized(module: nn.Module) -> nn.Module:
    """A deep copy of `module` with every submodule's `reset_parameters()` called, each module's after its children's,
    as a module's __init__ builds its layers before it sets them: a module's own reset_parameters that sets its layers
    in a scheme of its own has the last word, as in the module given. One sentence, naming the fix, when a submodule
    holds parameters and has no way to draw them again."""
    fresh, seen = copy.deepcopy(module), set()

    def draw(part: nn.Module, name: str) -> None:
        if id(part) in seen:  # a module shared by two parents is drawn once
            return
        seen.add(id(part))
        for child, inner in part.named_children():
            draw(inner, f"{name}.{child}" if name else child)
        reset = getattr(part, "reset_parameters", None)
        if callable(reset):
            reset()
        elif next(part.parameters(recurse=False), None) is not None:
            where = f"its submodule {name!r} ({type(part).__name__})" if name else type(part).__name__
            raise RiskminError(
                "each run trains a fresh copy of the module, its parameters drawn again under the "
                f"run's seed, but {where} holds parameters and has no reset_parameters(); pass a "
                f"factory instead, lambda: {type(module).__name__}(...), which builds a fresh module "
                "for each run"
            )

    draw(fresh, "")
    return fresh


def replica(model, config: Config, seed: int, n_inputs: int, n_outputs: int) -> nn.Module:
    built = model_for(model, seed)
    return models.build(config, n_inputs, n_outputs, seed) if isinstance(built, str) else built


def refusal(model, data: Data, config: Config) -> str:
    """Why the vectorized engine cannot run these settings exactly like `fit` would, or "" when it can."""
    if not isinstance(data, Data):
        return "the data is a Dataset, read item by item through a DataLoader"
    if not isinstance(data.x, torch.Tensor):  # several
        return "the inputs are several tensors, which the stacked engine does not take"
    if config.val_every:
        return "validation every N steps is per run"
    if config.scheduler == "plateau":
        return "the plateau scheduler reacts to each run's own validation loss"
    if config.scheduler_interval == "step" and config.scheduler != "none":
        return "the schedule steps after every step"
    if config.clip_grad:
        return "gradient clipping is per run"
    if config.precision != "32":
        return (
            f"precision {config.precision} rounds each run's own products, which a stack's batched ones would "
            "round otherwise"
        )
    probe = replica(model, config, config.seed, data.n_features, data.n_targets)
    if hasattr(probe, "training_step"):
        return "the model trains by its own training_step"
    parameters = list(probe.parameters())
    if any(nn.parameter.is_lazy(p) for p in parameters):  # a stack is built from the shapes before the first batch
        return "the model has lazy layers, whose shapes its first batch decides"
    # a stack trains every tensor it stacks; a model with no parameters gets fit's sentence from fit
    if not parameters or not all(p.requires_grad for p in parameters):
        return (
            "the model holds parameters that do not train (requires_grad False)" if parameters else "the model has none"
        )
    # tied weights: a stack is built of each parameter once, by its first name, and the layer that reads it by another
    # would be left without it (autograd's "expected device meta", from backward)
    if len(list(probe.named_parameters(remove_duplicate=False))) != len(parameters):
        return "the model shares a parameter between layers (tied weights)"
    # a model fit refuses is refused here in fit's words, before vmap's own failure below could say it otherwise
    check_model(probe, probe_of(data, data.x[:2], data.y[:2]), config.loss)  # it leaves the probe as it was
    buffers = [name for name, _ in probe.named_buffers()]
    if buffers:  # a stack is built of its parameters alone
        return (
            f"the model keeps buffers ({', '.join(buffers[:3])}{', ...' if len(buffers) > 3 else ''}), such as "
            "BatchNorm's running statistics, which a stack does not carry per run"
        )
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in probe.modules()):
        return "dropout draws its own random numbers in each run"
    try:
        params, buffers = stack_module_state([probe, copy.deepcopy(probe)])
        for training in (True, False):  # a stack trains in training mode and evaluates in evaluation mode
            vmap(stacked_forward(probe, training))(params, buffers, data.x[:2].expand(2, 2, -1))
    except Exception as error:  # any failure here means vmap cannot batch this module
        return f"vmap cannot batch {type(probe).__name__} ({str(error).splitlines()[0][:120]})"
    return ""


def stacked_forward(module: nn.Module, training: bool = True):
    """forward(params, buffers, x) of one replica, in training mode or not, for vmap to batch over the replicas."""
    base = copy.deepcopy(module).to("meta")  # structure only; the weights come in through functional_call
    base.train(training)  # a layer that reads self.training answers as in fit, which evaluates after model.eval()
    return lambda params, buffers, x: functional_call(base, (params, buffers), (x,))


def batched_forward(module: nn.Module, training: bool = True):
    """The forward of all replicas at once, in training mode or not, for vmap or, for riskmin's own parametrizations
    (whose layers read no mode), written out directly.

    riskmin's models are linear layers and elementwise activations applied in order, so each
    layer of all R replicas is one batched matrix product (baddbmm): a step of R = 100 small
    replicas takes about half the time of vmap over functional_call, whose cost is per call.
    """
    layers = list(module.named_children())
    built_in = type(module) in (models.Linear, models.TwoLayerNN, models.MLP)
    if not built_in or not all(isinstance(layer, (nn.Linear, *models.ACTIVATIONS.values())) for _, layer in layers):
        return vmap(stacked_forward(module, training))

    def forward(params, buffers, x):
        fresh = False  # whether x is a product nothing else keeps, which a ReLU may overwrite
        for name, layer in layers:
            if isinstance(layer, nn.Linear):
                weight, bias = params[f"{name}.weight"].transpose(1, 2), params.get(f"{name}.bias")
                x = torch.bmm(x, weight) if bias is None else torch.baddbmm(bias.unsqueeze(1), x, weight)
                fresh = True
            else:  # elementwise: the replica axis changes nothing; a ReLU in place saves a pass over the activations
                x = torch.relu_(x) if fresh and isinstance(layer, nn.ReLU) else layer(x)
                fresh = False
        return x

    return forward


def chunk_size(config: Config, data: Data, width: int, runs: int) -> int:
    """How many of `runs` replicas train together: `chunk`, or as many as ACTIVATION_BUDGET allows."""
    if config.chunk:
        return config.chunk
    per_replica = 4 * len(data) * (data.n_features + width + data.n_targets)
    return max(1, min(runs, ACTIVATION_BUDGET // per_replica))


def stacks_of(model, data: Data, config: Config, runs: list, processes: int = 1) -> list:
    """`runs`, given as (seed, Splits, changes), cut into the stacks that train together, each as the positions of its
    runs in `runs`: runs whose splits have the same sizes (K folds of rows that K does not divide have two), at most
    `chunk_size` replicas each, and as many stacks as `processes` at least, so that each process of a torchrun has one.
    The cut depends on the whole experiment alone, so a resumed one trains the same stacks as it began."""
    probe = replica(model, config, runs[0][0], data.n_features, data.n_targets)
    width = sum(p.shape[0] for p in probe.parameters() if p.ndim == 2)
    shapes: dict = {}
    for position, (_, splits, _) in enumerate(runs):
        shapes.setdefault((len(splits.train), len(splits.val), len(splits.test)), []).append(position)
    stacks = []
    for alike in shapes.values():
        size = min(chunk_size(config, data, width, len(alike)), -(-len(alike) // processes))
        stacks += [alike[i : i + size] for i in range(0, len(alike), size)]
    return stacks


class Stack:
    """The replicas still training, stacked: their weights, optimizer, schedule, rows, scaling and batch orders.

    When runs stop (early stopping, divergence) they leave the stack: the weights and the
    optimizer state of the others are taken into a smaller stack, so the cost of an epoch
    follows the runs still training.
    """

    optimizer: Union[PerRun, torch.optim.Optimizer]  # riskmin's own for runs alike or differing, else torch's

    def __init__(
        self,
        config: Config,
        params: dict,
        index: torch.Tensor,
        common: "ChunkSetup",
        generators: list,
        optimizer_state: Optional[dict] = None,
        scheduler_state: Optional[dict] = None,
    ):
        self.config, self.index, self.common, self.generators = config, index, common, generators
        self.params = {k: v.detach().requires_grad_() for k, v in params.items()}
        # every run with the settings of config, unscheduled
        alike = common.rates is None and config.scheduler == "none"
        if alike and per_run_supported(config.optimizer):
            self.optimizer, self.scheduler = PerRun.alike(self.params.values(), config, len(index)), None
        elif common.rates is None:
            self.optimizer = make_optimizer(config, self.params.values())
            self.scheduler = make_scheduler(config, self.optimizer)
        else:  # candidates that differ in learning rate, weight decay, momentum or schedule, side by side
            positions = index.cpu()
            # per_run_settings gives the four together
            assert common.decays is not None and common.momenta is not None and common.schedules is not None
            self.optimizer = PerRun(
                self.params.values(),
                config,
                common.rates[positions],
                common.decays[positions],
                common.momenta[positions],
                [common.schedules[i] for i in positions.tolist()],
            )
            self.scheduler = PerRunSchedule(self.optimizer)
        if optimizer_state is not None:  # a smaller stack goes on where the larger one was
            self.optimizer.load_state_dict(optimizer_state)
        if scheduler_state is not None and self.scheduler is not None:
            self.scheduler.load_state_dict(scheduler_state)
        self.rows = {part: rows[index] for part, rows in common.rows.items()}
        self.scaling = common.scaling.at(index)

    def __len__(self) -> int:
        return len(self.index)

    def keep(self, staying: torch.Tensor) -> Optional["Stack"]:
        """The stack of the runs where `staying` holds: this one when all stay, None when none do."""
        if bool(staying.all()):
            return self
        if not bool(staying.any()):
            return None
        chosen = staying.nonzero()[:, 0]
        params = {k: v.detach()[chosen] for k, v in self.params.items()}
        generators = [self.generators[i] for i in chosen.tolist()]
        return Stack(
            self.config,
            params,
            self.index[chosen],
            self.common,
            generators,
            kept_state(self.optimizer.state_dict(), chosen),
            None if self.scheduler is None else self.scheduler.state_dict(),
        )

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        return self.scaling.inputs(rows_at(self.common.x, idx))

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        return self.scaling.targets(rows_at(self.common.y, idx))


def kept_state(state: dict, chosen: torch.Tensor) -> dict:
    """An optimizer state_dict with only the replicas `chosen` (positions along the first axis of every per-replica
    tensor; a step count, one number for all, stays as it is)."""

    def kept(value):
        return value[chosen] if isinstance(value, torch.Tensor) and value.ndim else value

    return {
        **state,
        "state": {i: {name: kept(value) for name, value in entry.items()} for i, entry in state["state"].items()},
    }


def train_stacked(model, data: Data, config: Config, runs: list, finished, threads=None) -> list:
    """Train one chunk of runs, given as (seed, Splits, changes), as a single stacked model; one table row per run.

    `changes` holds what a run's settings change from `config`: nothing, or its own learning
    rate and weight decay (candidates of a comparison that differ only in those).

    Every run is judged by the rules `fit` uses (policy.py) and measured by the same metric code
    (metrics.py), element by element over the replicas.
    """
    device = resolve_device(config.device)
    train_rows = len(runs[0][1].train)
    batch, batches = schedule(train_rows, config.batch_size, config.sampling, config.drop_last)
    # optimizer steps, as fit counts them: an epoch's last group steps
    steps_per_epoch = -(-batches // config.accumulate)
    config = config.replace(epochs=config.epochs_for(steps_per_epoch))
    assert config.epochs is not None  # just made final
    common = ChunkSetup.of(model, data, config, runs, device)
    stack = Stack(
        config,
        {k: v.to(device) for k, v in common.params.items()},
        torch.arange(len(runs), device=device),
        common,
        [torch.Generator().manual_seed(order_seed(seed)) for seed, _, _ in runs],
    )
    record = JudgedRuns.of(stack, config, judged(config, "val" in common.rows))
    per_replica_loss = replica_losses(config.loss)
    shares = accumulation_shares(config, train_rows)  # each batch's weight in its accumulated step, as fit weighs it
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    step, epoch = 0, 0
    while stack is not None and epoch < config.epochs and step < total_steps:
        epoch += 1
        if threads is not None:
            threads.start()
        order = epoch_order(stack.rows["train"], stack.generators, config.sampling, batch, batches)
        running, taken = torch.zeros(len(stack), device=device), 0
        for i in range(batches):
            idx = order[:, i * batch : (i + 1) * batch]
            losses = per_replica_loss(
                common.forward(stack.params, common.buffers, stack.inputs(idx)), stack.targets(idx)
            )
            losses = losses if shares is None else losses * shares[i]
            losses.sum().backward()  # each replica's gradient is that of its own loss
            running += losses.detach()
            if (i + 1) % config.accumulate and i + 1 < batches:
                continue  # this batch's gradients wait for the rest of its group
            stack.optimizer.step()
            for parameter in stack.params.values():
                parameter.grad = None
            taken += 1
            if threads is not None:
                threads.step(len(stack))
            if step + taken == total_steps:
                break
        step += taken
        if stack.scheduler is not None:
            stack.scheduler.step()
        leaving = record.validate(stack, epoch, step, running / taken)
        if threads is not None:
            threads.end(taken * len(stack))
        if step == total_steps or epoch == config.epochs:
            leaving[:] = True
        stack = without_leaving(stack, record, leaving, finished)
    return final_rows(common, record, runs)


def without_leaving(stack: Stack, record: "JudgedRuns", leaving: torch.Tensor, finished) -> Optional[Stack]:
    """The stack less the runs `leaving` it, whose last weights `record` keeps and whose number `finished` is told;
    None once no run is left."""
    if not bool(leaving.any()):
        return stack
    record.leave(stack, leaving)
    finished(int(leaving.sum()))
    return stack.keep(~leaving.to(stack.index.device))


def final_rows(common: "ChunkSetup", record: "JudgedRuns", runs: list) -> list:
    """One table row per run: every split measured with the weights each run ends with (its best, where restored)."""
    results, weights = {}, record.final()
    for part, idx in common.rows.items():
        results.update(evaluate_stacked(common, weights, idx, common.scaling, f"{part}_"))
    return [record.row(r, seed, common, results) for r, (seed, _, _) in enumerate(runs)]


@dataclass(kw_only=True)
class JudgedRuns:
    """Per run of a chunk: the judge that decides its verdicts (policy.Judge, as in `fit`), its best weights and the
    weights it left the stack with."""

    config: Config
    judge: Judge
    best: dict
    last: dict

    @classmethod
    def of(cls, stack: Stack, config: Config, tracked: bool) -> "JudgedRuns":
        weights = {k: v.detach().clone() for k, v in stack.params.items()}
        return cls(
            config=config,
            judge=Judge(config, len(stack), tracked),
            best=weights,
            last={k: v.clone() for k, v in weights.items()},
        )

    def validate(self, stack: Stack, epoch: int, step: int, loss: torch.Tensor) -> torch.Tensor:
        """Validate the stack's runs after an epoch, as `fit` does, and let the judge decide; which of them leave (on
        the CPU)."""
        metrics = {"loss": loss.double().cpu().numpy() * loss_units(self.config.loss, stack.scaling.scales)}
        value = None
        if self.judge.tracked:
            monitor = self.config.monitor
            if "val" in stack.rows and monitor != "loss":  # the training loss needs no validation rows
                # a val_ metric alone, the one the judge reads; anything else (a mistake) all of them, for the sentence
                # that lists them as fit's does
                wanted = monitor[4:] if monitor.startswith("val_") else None
                val_metrics = evaluate_stacked(
                    stack.common, stack.params, stack.rows["val"], stack.scaling, "val_", wanted
                )
                if monitor not in val_metrics and wanted is not None:
                    val_metrics = evaluate_stacked(stack.common, stack.params, stack.rows["val"], stack.scaling, "val_")
                metrics.update(val_metrics)
            value = monitored(metrics, monitor)
        verdict = self.judge.judge(epoch, step, metrics["loss"], value, runs=stack.index.cpu().numpy())
        chosen = torch.from_numpy(verdict.improved).to(stack.index.device)
        for k, v in stack.params.items():
            self.best[k][stack.index[chosen]] = v.detach()[chosen]
        return torch.from_numpy(verdict.leaving)

    def leave(self, stack: Stack, leaving: torch.Tensor) -> None:
        going = leaving.to(stack.index.device)
        for k, v in stack.params.items():
            self.last[k][stack.index[going]] = v.detach()[going]

    def final(self) -> dict:
        """Each run's weights at the end: its best, where the judge restores them, else those it left with."""
        restore = torch.from_numpy(self.judge.restored())
        return {
            k: torch.where(restore.to(v.device).view(-1, *[1] * (v.ndim - 1)), self.best[k], v)
            for k, v in self.last.items()
        }

    def row(self, r: int, seed: int, common: "ChunkSetup", results: dict) -> dict:
        judged = self.judge.fields(r)
        row = {"seed": seed, **{k: judged[k] for k in ("best_epoch", "epochs_run", "stopped_early", "diverged")}}
        row.update({k: float(v[r]) for k, v in results.items()})
        for part in ("train", "val", "test"):
            row.setdefault(f"{part}_loss", None)  # an empty split, as fit reports it
        if reports_closed_form(self.config, common.template, "test" in common.rows):
            row["closed_form_test_loss"] = closed_form(common, r, self.config.bias)
        return row


def closed_form(common: "ChunkSetup", r: int, bias: bool) -> float:
    """Run r's closed-form least-squares test mse, in the target's units (of log y for a log target, as its loss)."""
    train, test = common.rows["train"][r], common.rows["test"][r]
    run_scaling = common.scaling.at(torch.tensor([r], device=train.device))
    x, y = common.x, common.y
    return least_squares_test_loss(
        run_scaling.inputs(x[train][None])[0], y[train], run_scaling.inputs(x[test][None])[0], y[test], bias
    )


def replica_losses(loss_name: str):
    """losses(outputs, targets) -> one loss per replica: mse written out over the replica axis (vmap's per-call cost is
    about half a millisecond, more than the loss of a small stack), any other loss through vmap."""
    if loss_name == "mse":
        return lambda output, target: nn.functional.mse_loss(output, target, reduction="none").flatten(1).mean(1)
    return vmap(make_loss(loss_name))


def epoch_order(train_rows: torch.Tensor, generators: list, sampling: str, batch: int, steps: int) -> torch.Tensor:
    """Each replica's row order for one epoch, drawn from its own generator exactly as `fit` draws it."""
    draws = [draw_order(train_rows.shape[1], g, sampling, batch, steps) for g in generators]
    if draws[0] is None:
        return train_rows  # full batch
    return train_rows.gather(1, torch.stack(draws).to(train_rows.device))


@dataclass(kw_only=True)
class ChunkSetup:
    """What every replica of a chunk shares or keeps side by side: the batched forward, the one copy of the data,
    each run's rows (replicas x rows index tensors) and scaling, and the stacked initial weights."""

    forward: Callable  # in training mode
    evaluate: Callable  # the same, in evaluation mode
    buffers: dict
    params: dict
    x: torch.Tensor
    y: torch.Tensor  # on the scale the runs train on: log y for a log target
    rows: dict  # part -> replicas x rows, for the parts that have rows
    scaling: Scaling
    loss_fn: nn.Module
    loss_name: str
    template: nn.Module  # the first replica, as built: what kind of model every replica is
    eval_rows: int  # rows per replica gathered at once, so memory stays bounded whatever the split size
    rates: Optional[torch.Tensor] = None  # per run, its learning rate, weight decay and momentum, when runs differ
    decays: Optional[torch.Tensor] = None
    momenta: Optional[torch.Tensor] = None
    schedules: Optional[list] = None  # per run, its (scheduler, step_size, gamma), when runs differ

    @classmethod
    def of(cls, model, data: Data, config: Config, runs: list, device: torch.device) -> "ChunkSetup":
        rows = {
            part: torch.stack([getattr(s, part) for _, s, _ in runs]).to(device) for part in ("train", "val", "test")
        }
        replicas = [replica(model, config, seed, data.n_features, data.n_targets) for seed, _, _ in runs]
        params, buffers = stack_module_state(replicas)
        template = replicas[0]
        width = sum(p.shape[0] for p in template.parameters() if p.ndim == 2)
        x = cast(torch.Tensor, data.x)  # one input tensor: the stacked engine takes no other (refusal)
        x, y, scaling = x.to(device), data.y.to(device), Scaling.of(data, config, [s for _, s, _ in runs], device)
        y = torch.log(y) if scaling.log else y  # a log target trains on log y: taken once here, not at every batch
        check_first_replica(template, data, config, scaling, x, y, rows["train"])
        return cls(
            forward=batched_forward(template),
            evaluate=batched_forward(template, training=False),
            buffers=buffers,
            params=params,
            x=x,
            y=y,
            rows={part: idx for part, idx in rows.items() if idx.shape[1]},
            scaling=scaling,
            loss_fn=make_loss(config.loss),
            loss_name=config.loss,
            template=template,
            eval_rows=max(1, EVAL_FLOATS // (len(runs) * (data.n_features + width + data.n_targets))),
            **per_run_settings(config, runs),
        )


def check_first_replica(
    template: nn.Module,
    data: Data,
    config: Config,
    scaling: Scaling,
    x: torch.Tensor,
    y: torch.Tensor,
    train: torch.Tensor,
) -> None:
    """The checks `fit` makes before its first step, made on the first replica and its first training rows as it trains
    on them: it takes the inputs, its outputs fit the targets under the loss, a bce model gives logits."""
    first = train[:1, :256]
    inputs, targets = scaling.inputs(rows_at(x, first))[0], scaling.targets(rows_at(y, first))[0]
    module = copy.deepcopy(template).to(x.device)
    check_model(module, probe_of(data, inputs[:2], targets[:2]), config.loss)
    if config.loss == "bce":
        check_bce_outputs(module, inputs)


def probe_of(data: Data, x: torch.Tensor, y: torch.Tensor) -> Probe:
    """Two rows of `data` (`x` and `y`, as the model would get them) and what a message about them names."""
    return Probe(x, y, data.n_features, data.n_targets, list(data.target_names or []), classes=list(data.classes or []))


def per_run_settings(config: Config, runs: list) -> dict:
    """Each run's learning rate, weight decay and momentum as float64 tensors (exactly the settings) and its schedule as
    (scheduler, step_size, gamma), by ChunkSetup's names for them, or nothing when no run changes them; a candidate's
    own, even where a chunk holds only that candidate. Each was checked already."""
    if not any(changes for _, _, changes in runs):
        return {}

    def value(changes: dict, name: str) -> float:
        value = changes.get(name, getattr(config, name))
        # unset: the optimizer's own
        return weight_decay(config.replace(weight_decay=value)) if name == "weight_decay" else value

    numbers = {
        field: torch.tensor([value(changes, name) for _, _, changes in runs], dtype=torch.float64)
        for field, name in (("rates", "lr"), ("decays", "weight_decay"), ("momenta", "momentum"))
    }
    schedules = [
        tuple(changes.get(name, getattr(config, name)) for name in ("scheduler", "step_size", "gamma"))
        for _, _, changes in runs
    ]
    return {**numbers, "schedules": schedules}


@torch.no_grad()
def evaluate_stacked(
    common: ChunkSetup, params: dict, idx: torch.Tensor, scaling: Scaling, prefix: str, only: Optional[str] = None
) -> dict:
    """Per-replica loss and metrics over the rows `idx` (replicas x rows), scaled by the replicas' `scaling` and
    gathered chunk by chunk: NumPy arrays, in the target's units. `only`: the one metric wanted (finish_metrics)."""
    sums = {}
    for start in range(0, idx.shape[1], common.eval_rows):
        rows = idx[:, start : start + common.eval_rows]
        output = common.evaluate(params, common.buffers, scaling.inputs(rows_at(common.x, rows)))
        target = scaling.targets(rows_at(common.y, rows))
        restore = scaling.restore if scaling.log else None
        values = evaluation_sums(common.loss_name, output, target, vmap(common.loss_fn), rows.shape[1], restore)
        for key, value in values.items():
            sums[key] = sums[key] + value if key in sums else value
    finished = finish_metrics(
        common.loss_name, sums, idx.shape[1], runs=len(idx), scale=scaling.scales, restored=scaling.log, only=only
    )
    return {prefix + k: v for k, v in finished.items()}
