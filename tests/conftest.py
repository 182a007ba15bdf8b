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


@pytest.fixture(scope="session")
def shared_artifacts(tmp_path_factory) -> Path:
    """One ARTIFACTS_DIR for the whole session: notebooks and pipeline tests reuse what any of
    them trained first (every stage is load-or-train)."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def prerequisites_only(shared_artifacts):
    """``link(dst)``: an ARTIFACTS_DIR at ``dst`` that links every prerequisite of
    ``shared_artifacts`` (data, ViT, VQ, LLM, features) but no stage, for tests that train
    stages of their own."""
    def link(dst: Path) -> Path:
        dst.mkdir(parents=True, exist_ok=True)
        for entry in shared_artifacts.iterdir():
            if not entry.name.startswith("stage"):
                (dst / entry.name).symlink_to(entry)
        return dst

    return link


@pytest.fixture(scope="session")
def smoke_gpt(shared_artifacts):
    """The tiny HealthGPT after all three stages in the smoke profile (a few steps each)."""
    from healthgpt_lite.config import build_config
    from healthgpt_lite.model.inference import HealthGPTLite
    from healthgpt_lite.training.pipeline import ensure_stages

    cfg = build_config("tiny", "smoke")
    ensure_stages(cfg, artifacts_dir=shared_artifacts)
    return HealthGPTLite.from_artifacts(shared_artifacts, profile="smoke")
