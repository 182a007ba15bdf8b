"""The model a student talks to: answers, images, real scans, and clear errors (smoke-trained)."""
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from healthgpt_lite.artifacts import data_dir_for
from healthgpt_lite.errors import InputError
from healthgpt_lite.model.inference import HealthGPTLite


@pytest.fixture(scope="module")
def scan(smoke_gpt, shared_artifacts):
    return data_dir_for(smoke_gpt.cfg, shared_artifacts) / "images" / "p00003_ct.png"


def test_answer_is_text(smoke_gpt, scan):
    assert isinstance(smoke_gpt.answer(scan, "How many lesions are there?"), str)


def test_generate_image_is_an_image_of_the_right_size(smoke_gpt, scan):
    img = smoke_gpt.generate_image("Convert this CT image into an MRI image.", image=scan)
    assert isinstance(img, Image.Image) and img.size == (smoke_gpt.cfg.vq.resolution,) * 2 and img.mode == "L"
    no_input = smoke_gpt.generate_image("Generate an X-ray image that matches this report: No focal lesion.")
    assert no_input.size == img.size


def test_real_dicom_and_pil_inputs(smoke_gpt):
    ct = get_testdata_file("CT_small.dcm")
    assert isinstance(smoke_gpt.answer(ct, "What imaging modality was used for this image?"), str)
    assert smoke_gpt.generate_image("Convert this CT image into an MRI image.", image=ct).size[0] == smoke_gpt.cfg.vq.resolution
    assert isinstance(smoke_gpt.answer(Image.new("RGB", (40, 30), "white"), "Is there a lesion?"), str)


@pytest.mark.parametrize("question", ["", "   ", "<image>"])
def test_empty_question(smoke_gpt, scan, question):
    with pytest.raises(InputError, match="question is empty"):
        smoke_gpt.answer(scan, question)


def test_bad_images(smoke_gpt, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        smoke_gpt.answer(tmp_path / "missing.png", "How many lesions are there?")
    with pytest.raises(InputError, match="truncated or corrupt DICOM"):
        smoke_gpt.answer(get_testdata_file("MR_truncated.dcm"), "How many lesions are there?")


def test_task_switch_restores_exactly(smoke_gpt, scan):
    codes = lambda: smoke_gpt.generate_codes(["Reconstruct this image."], [scan])  # noqa: E731
    first = codes()
    smoke_gpt.answer(scan, "How many lesions are there?")  # switches to comprehension and back
    assert torch.equal(first, codes())


def test_from_artifacts_without_a_trained_model(tmp_path):
    with pytest.raises(InputError, match="no trained HealthGPT here"):
        HealthGPTLite.from_artifacts(tmp_path)


def test_answer_accepts_what_load_image_returns(smoke_gpt, scan):
    """(3, H, W) tensors from ``load_image`` and (3, H, W) / (H, W) arrays are answered like the file."""
    from healthgpt_lite.data import load_image

    q = "What imaging modality was used for this image?"
    t = load_image(scan)
    expected = smoke_gpt.answer(scan, q)
    assert smoke_gpt.answer(t, q) == expected
    assert smoke_gpt.answer(t.numpy(), q) == expected
    assert smoke_gpt.answer(t[0].numpy(), q) == expected  # the phantom is gray: one channel is the image
    assert smoke_gpt.pixels([t]).shape == (1, 3, smoke_gpt.cfg.vision.image_size, smoke_gpt.cfg.vision.image_size)
