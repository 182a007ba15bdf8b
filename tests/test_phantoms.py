import numpy as np
import pytest

from healthgpt_lite.data.phantoms import (FOV_MM, MODALITIES, SIZE_CLASSES, Patient, downsample, make_patient,
                                           render)


def test_deterministic_and_distinct():
    assert make_patient(5).to_dict() == make_patient(5).to_dict()
    assert make_patient(5).to_dict() != make_patient(6).to_dict()
    assert make_patient(5, seed=1).to_dict() != make_patient(5).to_dict()
    np.testing.assert_array_equal(render(make_patient(5), "ct", 64), render(make_patient(5), "ct", 64))


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("size", [16, 64, 100, 256])
def test_renders_at_any_resolution(modality, size):
    img = render(make_patient(1), modality, size)
    assert img.shape == (size, size) and img.dtype == np.float32
    assert 0 <= img.min() and img.max() <= 1
    assert img[0, 0] == 0  # outside the body: air is black in every modality


def test_resolutions_agree():
    """The 256 px render, area-downsampled, is close to the 64 px render: the same anatomy."""
    p = make_patient(2)
    for m in MODALITIES:
        err = np.abs(downsample(render(p, m, 256), 4) - render(p, m, 64)).mean()
        assert err < 0.02, (m, err)


def test_lesions_are_where_the_ground_truth_says():
    """Every lesion changes the pixels at its centre the way its modality says it should."""
    checked = 0
    for i in range(40):
        p = make_patient(i)
        for lesion in p.lesions:
            healthy = Patient(p.pid, [s for s in p.shapes if s.tissue != "lesion"], [], p.texture, p.bias, p.contrast_jitter)
            r, c = ((np.array(lesion.center[::-1]) + 1) / 2 * 256).astype(int)
            mri_delta = render(p, "mri", 256)[r, c] - render(healthy, "mri", 256)[r, c]
            ct_delta = render(p, "ct", 256)[r, c] - render(healthy, "ct", 256)[r, c]
            assert mri_delta > 0.3  # T2: lesions bright
            assert abs(ct_delta) > 0.15
            checked += 1
    assert checked > 20


def test_lesion_facts():
    counts = set()
    for i in range(200):
        p = make_patient(i)
        counts.add(len(p.lesions))
        for l in p.lesions:
            lo, hi = SIZE_CLASSES[l.size_class]
            assert lo <= l.diameter_mm <= hi
            assert (l.side == "right") == (l.center[0] < 0)  # radiological convention
            if l.organ == "liver":
                assert l.side == "right"
        for a in p.lesions:  # no two lesions overlap
            for b in p.lesions:
                if a is not b:
                    assert np.hypot(*np.subtract(a.center, b.center)) > (a.diameter_mm + b.diameter_mm) / FOV_MM
    assert counts == {0, 1, 2, 3}


def test_patient_round_trips_through_json():
    import json

    p = make_patient(9)
    assert Patient.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_unknown_modality():
    with pytest.raises(ValueError, match="unknown modality"):
        render(make_patient(0), "pet", 32)
