"""Does a generated X-ray show what its report says? A probe trained on *real* phantoms.

Report->image has no pixel-exact target (the report does not fix the body shape), so SSIM to
one patient's X-ray would be unfair. Instead a small CNN, trained on freshly rendered X-rays
of patients that are *not* in the data set (no leakage), reads lesion facts off an image:
the number of lesions (0-3) and whether the patient's right / left side has one. A generated
image "agrees" with its report when the probe reads the same facts from it as the report states.
The probe's own accuracy on the real test X-rays is its ceiling, reported beside it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.phantoms import Patient, make_patient, render
from .small_cnn import SmallCNN

PROBE_SEED_OFFSET = 1_000_003  # probe patients come from another seed: never in the data set


def lesion_facts(p: Patient) -> dict[str, int]:
    sides = {l.side for l in p.lesions}
    return {"count": len(p.lesions), "right": int("right" in sides), "left": int("left" in sides)}


class LesionProbe(SmallCNN):
    """(B, 1, H, W) in [0, 1] -> count logits (B, 4) and side logits (B, 2: right, left)."""

    def __init__(self, width: int = 16):
        super().__init__({"count": 4, "sides": 2}, width)

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.eval()
        out = self(images)
        return {"count": out["count"].argmax(1), "right": (out["sides"][:, 0] > 0).long(),
                "left": (out["sides"][:, 1] > 0).long()}


def probe_dataset(n: int, size: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    patients = [make_patient(i, seed + PROBE_SEED_OFFSET) for i in range(n)]
    images = torch.from_numpy(np.stack([render(p, "xray", size) for p in patients]))[:, None]  # (n, 1, H, W)
    facts = [lesion_facts(p) for p in patients]
    return images, {k: torch.tensor([f[k] for f in facts]) for k in facts[0]}


def train_probe(size: int, n_patients: int = 2000, steps: int = 600, seed: int = 0, progress: bool = False,
                width: int = 16, lr: float = 2e-3, batch: int = 64) -> LesionProbe:
    """Train the probe on ``n_patients`` fresh phantoms (about a minute on 2 CPU cores); the
    defaults are ``EvalConfig``'s (``probe_*``); :func:`train_probe_from_config` passes them all."""
    torch.manual_seed(seed)
    images, facts = probe_dataset(n_patients, size, seed)
    probe = LesionProbe(width)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr)
    sides = torch.stack([facts["right"], facts["left"]], 1).float()  # (n, 2)
    steps_iter = range(steps)
    if progress:
        from tqdm.auto import tqdm
        steps_iter = tqdm(steps_iter, desc="lesion probe")
    for step in steps_iter:
        idx = torch.randint(0, n_patients, (min(batch, n_patients),))
        out = probe(images[idx])
        count_logits, side_logits = out["count"], out["sides"]
        loss = nn.functional.cross_entropy(count_logits, facts["count"][idx]) + \
            nn.functional.binary_cross_entropy_with_logits(side_logits, sides[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return probe.eval()


def train_probe_from_config(cfg, progress: bool = False) -> LesionProbe:
    """The probe every evaluation uses: image size from ``cfg.vq``, the rest from ``cfg.eval.probe_*``."""
    e = cfg.eval
    return train_probe(cfg.vq.resolution, e.probe_patients, e.probe_steps, seed=cfg.seed, progress=progress,
                       width=e.probe_width, lr=e.probe_lr, batch=e.probe_batch)


def agreement(read: dict[str, torch.Tensor], truth: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of images whose probe reading matches the stated facts (count; sides; all)."""
    count = (read["count"] == truth["count"]).float()
    sides = ((read["right"] == truth["right"]) & (read["left"] == truth["left"])).float()
    return {"count": float(count.mean()), "sides": float(sides.mean()), "all": float((count * sides).mean())}
