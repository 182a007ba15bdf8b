import torch

from healthgpt_lite.data.phantoms import make_patient
from healthgpt_lite.eval.probe import agreement, lesion_facts, probe_dataset, train_probe


def test_lesion_facts():
    p = make_patient(6)
    f = lesion_facts(p)
    assert f["count"] == len(p.lesions) and f["right"] == int(any(l.side == "right" for l in p.lesions))


def test_probe_fits_its_training_patients():
    """Capacity check on a small set (the generalisation number is measured by `reproduce`)."""
    probe = train_probe(size=64, n_patients=64, steps=200, width=8, lr=3e-3)
    images, facts = probe_dataset(64, 64, seed=0)  # the same patients it trained on
    score = agreement(probe.read(images), facts)
    assert score["sides"] > 0.8 and score["count"] > 0.8
    blank = agreement(probe.read(torch.zeros(64, 1, 64, 64)), facts)
    assert blank["all"] < score["all"]
