"""The metric registry: what it lists for a task is what a run measures, and the names it holds are riskmin's own."""

import pytest
import torch

import riskmin
from riskmin.metrics import METRICS, measured, metrics_where


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_a_run_measures_exactly_the_metrics_the_registry_lists_for_its_task(task):
    data = riskmin.load("lab1", riskmin.Config(n_samples=60))
    if task == "classification":
        data = riskmin.Data(data.x, (data.y[:, 0] > 0).long())
    run = riskmin.fit("linear", data, epochs=1, progress=False)
    for part in ("train", "val", "test"):
        reported = [key[len(part) + 1:] for key in run.summary if key.startswith(f"{part}_")]
        assert reported == list(measured(task)), (part, reported)


def test_higher_is_better_ranks_a_comparison_and_names_the_mode():
    from riskmin._experiments._candidates import ranking

    modes = {name: ranking(f"test_{name}", riskmin.Config())[1] for name in METRICS}
    assert [name for name, mode in modes.items() if mode == "max"] == list(metrics_where(higher_is_better=True))
    assert set(metrics_where(higher_is_better=True)) == {"r2", "accuracy", "f1"}


def test_a_metric_of_the_users_own_may_not_take_a_name_the_registry_holds():
    for name in METRICS:
        with pytest.raises(riskmin.RiskminError, match=f"metric name '{name}' is not allowed"):
            riskmin.fit("linear", "lab1", epochs=1, progress=False, metrics={name: lambda output, y: torch.zeros(())})


def test_a_stack_of_runs_with_several_outputs_finishes_each_run_from_its_own_sums():
    # the registry's finishers read each output's four sums by slicing one row of the stack's table: three runs of
    # three outputs, with a scale per run, against the metrics written out with torch
    from riskmin.metrics import finish_metrics, metric_sums

    generator = torch.Generator().manual_seed(0)
    output, y = torch.randn(3, 40, 3, generator=generator), torch.randn(3, 40, 3, generator=generator)
    scales = [1.0, 2.0, 0.5]
    finished = finish_metrics("mse", metric_sums("mse", output, y), 40, runs=3, scale=scales)
    for run, scale in enumerate(scales):
        error, target = (output[run] - y[run]).double() * scale, y[run].double() * scale
        r2 = 1 - (error ** 2).sum(0) / ((target - target.mean(0)) ** 2).sum(0)
        expected = {"mse": (error ** 2).mean(), "rmse": (error ** 2).mean().sqrt(), "mae": error.abs().mean(),
                    "r2": r2.mean()}
        for name, value in expected.items():
            assert finished[name][run] == pytest.approx(value.item(), rel=1e-9), (run, name)
        assert finished["loss"][run] == finished["mse"][run]


def test_a_certain_and_right_prediction_has_a_log_loss_of_plus_zero():
    import math

    import torch

    from riskmin.metrics import finish_metrics, metric_sums

    sums = metric_sums("cross_entropy", torch.tensor([[1000.0, -1000.0], [-1000.0, 1000.0]]), torch.tensor([0, 1]))
    found = finish_metrics("cross_entropy", sums, 2)
    # -0.0 would print as "-0" in a table and in summary.json
    assert found["log_loss"] == 0.0 and math.copysign(1.0, found["log_loss"]) == 1.0 and f"{found['loss']:g}" == "0"
