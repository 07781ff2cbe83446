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
