import pytest
import torch

import riskmin


@pytest.fixture
def lab1():
    return riskmin.load("lab1")


@pytest.fixture(autouse=True)
def one_thread():
    """Tests share two cores; one intra-op thread keeps them fast and their timings steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def signal_at(tmp_path_factory):
    """signal_at(step, name, batches=0): the flags that make `riskmin train` send itself the signal `name` right after
    step `step` (with `batches`, after that many batches past it): a file that makes a callbacks.SignalAt, which
    --callback names. An interruption at a point chosen in advance, so that no test depends on timing."""
    folder = tmp_path_factory.mktemp("callbacks")

    def flags(step: int, name: str, batches: int = 0) -> list:
        path = folder / f"signal_at_{step}_{batches}_{name}.py"
        path.write_text(f"from riskmin.callbacks import SignalAt\n\ncallback = SignalAt({step}, {name!r}, batches={batches})\n")
        return ["--callback", f"{path}:callback"]
    return flags
