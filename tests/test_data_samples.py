"""data_samples/ is made by one documented command and the generator reproduces it byte for byte."""
from pathlib import Path

from healthgpt_lite.data.samples import build_samples


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generator_reproduces_data_samples(repo, tmp_path):
    committed = _files(repo / "data_samples")
    fresh = _files(build_samples(tmp_path / "samples"))
    assert sorted(fresh) == sorted(committed), "file lists differ: run `make data-samples`"
    differing = [name for name in committed if committed[name] != fresh[name]]
    assert not differing, f"regenerate with `make data-samples`: {differing[:5]}"


def test_sample_is_small(repo):
    total = sum(len(b) for b in _files(repo / "data_samples").values())
    assert total < 3_000_000
