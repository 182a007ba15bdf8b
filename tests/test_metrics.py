import pytest
import torch

from healthgpt_lite.eval.metrics import (bicubic_upsample, comprehension_scores, exact_match, image_scores,
                                          normalize_answer, report_scores)


@pytest.mark.parametrize("prediction, reference", [
    ("Yes.", "yes"), ("yes", "是"), ("The left lung", "left lung"), ("右肺。", "右肺"), ("X-ray", "X光"),
    ("  MRI ", "mri"), ("Ｙｅｓ", "Yes"), ("none", "无"),
])
def test_equivalent_answers(prediction, reference):
    assert exact_match(prediction, reference)


@pytest.mark.parametrize("prediction, reference", [("No", "Yes"), ("left lung", "right lung"), ("2", "3"), ("", "yes")])
def test_different_answers(prediction, reference):
    assert not exact_match(prediction, reference)


def test_normalize_keeps_hyphenated_words():
    assert normalize_answer("X-Ray!") == "xray" and normalize_answer("T2-weighted") == "t2-weighted"


def test_comprehension_scores_split_closed_and_open():
    rows = [dict(question_type="yes_no", modality="ct", lang="en", prediction="Yes", answer="Yes"),
            dict(question_type="choice", modality="ct", lang="en", prediction="MRI", answer="CT"),
            dict(question_type="open_count", modality="mri", lang="zh", prediction="2", answer="2"),
            dict(question_type="report", modality="mri", lang="zh", prediction="x", answer="y")]
    s = comprehension_scores(rows)
    assert s["closed"] == 0.5 and s["open"] == 1.0 and s["n/closed"] == 2 and s["n/open"] == 1
    assert s["closed/yes_no"] == 1.0 and s["open/lang=zh"] == 1.0


def test_report_scores():
    same = report_scores(["a small lesion in the liver."], ["a small lesion in the liver."], ["en"])
    other = report_scores(["no focal lesion."], ["a small lesion in the liver."], ["en"])
    assert same["bleu4"] > 0.99 and same["rougeL_f1"] > 0.99 and other["rougeL_f1"] < 0.5
    zh = report_scores(["肝脏小病灶"], ["肝脏小病灶"], ["zh"])  # scored per character
    assert zh["bleu4"] > 0.99


def test_image_scores():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 32, 32)
    s = image_scores(x, x)
    assert torch.allclose(s["ssim"], torch.ones(3)) and (s["mse"] == 0).all()
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    s = image_scores(noisy, x)
    assert (s["psnr"] > 15).all() and (s["psnr"] < 25).all() and (s["ssim"] < 0.99).all()
    rgb = image_scores(x.repeat(1, 3, 1, 1), x)  # gray copies in 3 channels compare as gray
    assert torch.allclose(rgb["ssim"], torch.ones(3))
    with pytest.raises(ValueError, match="differ in shape"):
        image_scores(x, x[..., :16])


def test_bicubic_baseline_shape():
    assert bicubic_upsample(torch.rand(2, 1, 16, 16), 64).shape == (2, 1, 64, 64)
