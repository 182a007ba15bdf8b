import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(min(2, os.cpu_count() or 1))
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def smoke_cfg():
    from healthgpt_lite.config import build_config

    return build_config("tiny", "smoke")


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory, smoke_cfg) -> Path:
    """A smoke-profile VL-Health-lite data set, generated once per test session."""
    from healthgpt_lite.data import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("data"), smoke_cfg.data)
