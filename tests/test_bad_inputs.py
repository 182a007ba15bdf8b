"""The bad-input suite: every public entry point, fed something wrong, answers with
`InputError` / `ConfigError` (both `ValueError`s) whose message names the problem, never a deep
traceback or a silent wrong answer, and never damages what is already trained.

Entry points: `HealthGPTLite` (answer, generate_image, from_artifacts), the command line
(`python -m healthgpt_lite ...`, including LightningCLI `fit`), records and converters, stage
artifacts and checkpoints. Unit-level cases of the same kind live beside their modules
(test_io.py: 15 image files; test_lora_inject.py: plugins; test_vq_convert.py: VQGAN checkpoints;
test_config.py: overrides; test_vq_tokenizer.py: encode/decode); this file is the catalogue a
user meets first.
"""
import io
import json
import pickle
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from healthgpt_lite.artifacts import data_dir_for
from healthgpt_lite.cli import main as cli_main
from healthgpt_lite.config import build_config
from healthgpt_lite.data.records import load_records
from healthgpt_lite.errors import InputError
from healthgpt_lite.model.inference import HealthGPTLite
from healthgpt_lite.training.pipeline import model_after, stage_path

ASK = "How many lesions are there?"


def _png(size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size).save(buf, format="PNG")
    return buf.getvalue()


def _bomb() -> bytes:
    """A valid PNG whose header claims 100000 x 100000 pixels."""
    data = bytearray(_png())
    ihdr = data[12:29]
    ihdr[4:12] = struct.pack(">II", 100_000, 100_000)
    data[12:29], data[29:33] = ihdr, struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _nan_array():
    a = np.ones((32, 32), np.float32)
    a[5, 5] = np.nan
    return a


# ----------------------------------------------------------------------------- the model API
BAD_IMAGES = {  # what answer() / generate_image() are given -> the words the error must contain
    "missing file": (lambda tmp: tmp / "missing.png", "does not exist"),
    "zero-byte file": (lambda tmp: (tmp / "empty.png").write_bytes(b"") or tmp / "empty.png", "empty input"),
    "truncated DICOM (pydicom's MR_truncated.dcm)": (lambda tmp: get_testdata_file("MR_truncated.dcm"), "truncated or corrupt DICOM"),
    "text file named .png": (lambda tmp: (tmp / "notes.png").write_text("hello") and tmp / "notes.png", "not an image"),
    "decompression bomb": (lambda tmp: _bomb(), "absurd dimensions"),
    "NaN pixels": (lambda tmp: _nan_array(), "NaN or infinite"),
    "a folder": (lambda tmp: tmp, "is a directory"),
    "a number instead of an image": (lambda tmp: 42, "cannot load an image from a int"),
}


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_answer_refuses_bad_images(smoke_gpt, tmp_path, case):
    make, words = BAD_IMAGES[case]
    with pytest.raises(InputError, match=words):
        smoke_gpt.answer(make(tmp_path), ASK)


@pytest.mark.parametrize("case", ["truncated DICOM (pydicom's MR_truncated.dcm)", "decompression bomb"])
def test_generate_image_refuses_bad_images(smoke_gpt, tmp_path, case):
    make, words = BAD_IMAGES[case]
    with pytest.raises(InputError, match=words):
        smoke_gpt.generate_image("Convert this CT image into an MRI image.", image=make(tmp_path))


@pytest.mark.parametrize("question", ["", "  \n ", "<image>", None])
def test_empty_or_missing_question(smoke_gpt, question):
    with pytest.raises(InputError, match="question is empty"):
        smoke_gpt.answer(_png((32, 32)), question)


def test_empty_instruction(smoke_gpt):
    with pytest.raises(InputError, match="empty"):
        smoke_gpt.generate_image("   ")


def test_unknown_task(smoke_gpt):
    with pytest.raises(InputError, match="unknown task 'segmentation'"):
        smoke_gpt.set_task("segmentation")


# ----------------------------------------------------------------------------- trained artifacts
@pytest.fixture
def copied_artifacts(smoke_gpt, shared_artifacts, tmp_path):
    """A private copy of the smoke-trained stages, to damage without touching the shared one."""
    dst = tmp_path / "art"
    shutil.copytree(shared_artifacts, dst, ignore=shutil.ignore_patterns("*.ckpt", "logs"))
    return dst


def test_from_artifacts_with_nothing_trained(tmp_path):
    with pytest.raises(InputError, match="no trained HealthGPT here.*make reproduce"):
        HealthGPTLite.from_artifacts(tmp_path)


def test_artifacts_of_another_preset(smoke_gpt, shared_artifacts, copied_artifacts):
    with pytest.raises(InputError, match="no trained HealthGPT here"):
        HealthGPTLite.from_artifacts(shared_artifacts, preset="small")
    cfg = build_config("tiny", "smoke")
    meta_path = stage_path(cfg, "stage1_comprehension", copied_artifacts) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "preset": "small"}))  # a stage trained for another preset
    with pytest.raises(InputError, match="made for preset 'small', but this run uses preset 'tiny'.*make it with"):
        model_after(cfg, ["stage1_comprehension"], copied_artifacts)


def test_half_written_stage_is_not_taken_for_a_good_one(copied_artifacts):
    cfg = build_config("tiny", "smoke")
    stage = stage_path(cfg, "stage3_generation", copied_artifacts)
    (stage / "meta.json").write_text('{"name": "stage3_gen')  # a damaged meta.json
    with pytest.raises(InputError, match="no trained HealthGPT here"):
        HealthGPTLite.from_artifacts(copied_artifacts)
    (stage / "meta.json").unlink()  # killed before the last write: weights present, no meta
    with pytest.raises(InputError, match="no trained HealthGPT here"):
        HealthGPTLite.from_artifacts(copied_artifacts)
    with pytest.raises(InputError, match="meta.json missing.*make it with"):
        model_after(cfg, ["stage1_comprehension", "stage1_generation", "stage2", "stage3_generation"], copied_artifacts)


def test_corrupt_meta_json_is_named(copied_artifacts):
    cfg = build_config("tiny", "smoke")
    stage = stage_path(cfg, "stage2", copied_artifacts)
    (stage / "meta.json").write_text("{ half a json")
    with pytest.raises(InputError, match="meta.json is corrupt"):
        model_after(cfg, ["stage1_comprehension", "stage1_generation", "stage2"], copied_artifacts)


def test_truncated_stage_weights_are_named(copied_artifacts):
    cfg = build_config("tiny", "smoke")
    weights = stage_path(cfg, "stage1_comprehension", copied_artifacts) / "trained.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InputError, match="trained.safetensors.*not a readable safetensors file"):
        model_after(cfg, ["stage1_comprehension"], copied_artifacts)


def test_truncated_vq_weights_are_named(copied_artifacts):
    from healthgpt_lite.vq import load_vq_tokenizer

    cfg = build_config("tiny", "smoke")
    (weights,) = [p for p in copied_artifacts.glob("vq-*/*.safetensors")]
    weights.write_bytes(weights.read_bytes()[:64])
    with pytest.raises(InputError, match="not a readable safetensors file"):
        load_vq_tokenizer(cfg, copied_artifacts)


def test_unknown_stage():
    with pytest.raises(InputError, match="unknown stage 'stage4'"):
        model_after(build_config("tiny", "smoke"), ["stage4"])


# ----------------------------------------------------------------------------- the command line
def _cli(capsys, *argv) -> tuple[int, str]:
    code = cli_main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["reproduce", "--set", "vq.bogus=1"], "unknown config key 'vq.bogus'"),
    (["reproduce", "--set", "vq.n_embed=many"], "vq.n_embed"),
    (["reproduce", "--preset", "huge"], "unknown preset 'huge'"),
    (["reproduce", "--profile", "slow"], "unknown profile 'slow'"),
    (["data", "generate", "--out", "x", "--set", "vision.patch_size=7"], "not a multiple of vision.patch_size=7"),
])
def test_cli_config_errors_are_one_line(capsys, argv, words):
    code, err = _cli(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and words in err and "Traceback" not in err


def test_cli_convert_missing_and_pickled_sources(capsys, tmp_path):
    code, err = _cli(capsys, "data", "convert", "--format", "slake", str(tmp_path / "none.json"), str(tmp_path / "o.json"))
    assert code == 2 and "source file not found" in err
    pkl = tmp_path / "pathvqa_test.pkl"
    pkl.write_bytes(pickle.dumps([{"question": "q"}]))
    code, err = _cli(capsys, "data", "convert", "--format", "pathvqa", str(pkl), str(tmp_path / "o.json"))
    assert code == 2 and "pickle" in err and not (tmp_path / "o.json").exists()


def test_fit_rejects_an_unknown_parameter(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["fit", "--config", "configs/tiny_cpu.yaml", "--model.learning_rte", "1"])
    assert exit_.value.code != 0 and "learning_rte" in capsys.readouterr().err


def test_fit_rejects_an_unknown_override(capsys, tmp_path):
    code, err = _cli(capsys, "fit", "--config", "configs/tiny_cpu.yaml", "--model.overrides", '{"train.stage9_steps": 3}',
                     "--model.artifacts_dir", str(tmp_path), "--trainer.max_steps", "1")
    assert code == 2 and "unknown config key 'train.stage9_steps'" in err and not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- records
@pytest.mark.parametrize("content, words", [
    ("[{\"id\": 1,", "not valid JSON"),
    (json.dumps([{"id": "a", "image": "x.png"}]), "missing key 'conversations'"),
    (json.dumps([{"id": "a", "image": "x.png", "conversations": [{"from": "human", "value": "<image>\nQ"}]}]),
     "human/gpt pairs"),
    (json.dumps([{"id": "a", "image": "x.png", "conversations": [{"from": "human", "value": "<image>\nQ"},
                                                                   {"from": "gpt", "value": ""}]}]), "empty gpt turn"),
])
def test_bad_records_files(tmp_path, content, words):
    path = tmp_path / "records.json"
    path.write_text(content)
    with pytest.raises(InputError, match=words):
        load_records(path)


def test_generated_records_still_load(smoke_gpt, shared_artifacts):
    """The control: the same loader accepts what the generator wrote."""
    records = load_records(data_dir_for(smoke_gpt.cfg, shared_artifacts) / "train.json")
    assert records and all("conversations" in r for r in records)
