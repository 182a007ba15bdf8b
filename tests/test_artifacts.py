import pytest
import torch

from healthgpt_lite.artifacts import (artifact_dir, atomic_save_safetensors, is_complete, load_or_make, read_meta)
from healthgpt_lite.config import build_config
from healthgpt_lite.errors import InputError


def test_load_or_make_makes_once(tmp_path):
    cfg = build_config("tiny", "smoke")
    calls = []

    def make(path):
        calls.append(path)
        atomic_save_safetensors({"w": torch.ones(2)}, path / "w.safetensors")
        return {"steps": 3}

    a = load_or_make(cfg, "thing", ("vq",), make, tmp_path)
    b = load_or_make(cfg, "thing", ("vq",), make, tmp_path)
    assert a == b and len(calls) == 1 and read_meta(a, "thing", "tiny")["steps"] == 3
    other = build_config("tiny", "smoke", {"vq.n_embed": 256})
    assert artifact_dir(other, "thing", ("vq",), tmp_path) != a  # another config, another artifact
    assert artifact_dir(other, "thing", ("data",), tmp_path) == artifact_dir(cfg, "thing", ("data",), tmp_path)


def test_interrupted_make_is_redone(tmp_path):
    cfg = build_config("tiny", "smoke")

    def crash(path):
        (path / "half.bin").write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_or_make(cfg, "thing", ("vq",), crash, tmp_path)
    path = artifact_dir(cfg, "thing", ("vq",), tmp_path)
    assert not is_complete(path)  # no meta.json: never mistaken for a good artifact
    load_or_make(cfg, "thing", ("vq",), lambda p: None, tmp_path)
    assert is_complete(path)


def test_read_meta_refuses_wrong_preset_and_missing(tmp_path):
    cfg = build_config("small", "smoke")
    path = load_or_make(cfg, "vq", ("vq",), lambda p: None, tmp_path)
    with pytest.raises(InputError, match="made for preset 'small', but this run uses preset 'tiny'.*make it with: X"):
        read_meta(path, "vq", "tiny", make_hint="X")
    with pytest.raises(InputError, match="holds a 'vq' artifact, expected 'clip'"):
        read_meta(path, "clip")
    with pytest.raises(InputError, match="no complete artifact"):
        read_meta(tmp_path / "nothing")


def test_atomic_write_never_leaves_half_a_file(tmp_path, monkeypatch):
    from healthgpt_lite.artifacts import store as artifacts  # the module whose os.replace the writes call

    target = tmp_path / "w.safetensors"
    atomic_save_safetensors({"w": torch.ones(3)}, target)
    good = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts.os, "replace", crash)  # the write succeeds, the rename fails
    with pytest.raises(OSError, match="disk full"):
        atomic_save_safetensors({"w": torch.zeros(1000)}, target)
    assert target.read_bytes() == good  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # and no temporary file is left
