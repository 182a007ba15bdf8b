"""Virtual patients for VL-Health-lite: one anatomy, three modalities, any resolution.

Real medical images cannot be downloaded here, and a student needs data whose ground truth is
known exactly. A *virtual patient* is a small 3-D anatomy of ellipsoids (body, lungs, heart,
liver, spleen, spine, clavicles) with 0-3 spherical lesions of known organ, size and position.
From it we render, analytically and so at any resolution:

* ``ct``   - a coronal slice (plane y = 0), CT-like contrast (air black, bone white,
             lesions hypodense in the liver and solid in the lungs);
* ``mri``  - the same slice with T2-like contrast (bone dark, lesions bright) and a smooth
             multiplicative bias field, as real MRI has;
* ``xray`` - a frontal projection: the line integral of attenuation through the whole body
             along y (Beer-Lambert), so organs overlap as on a chest radiograph.

Coordinates: x (image columns, left to right), z (image rows, head at the top), y (depth,
front to back), all in [-1, 1]; the field of view is ``FOV_MM`` = 400 mm. Images follow the
radiological convention: the patient's *right* is on the image's *left*.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

FOV_MM = 400.0  # field of view: 2 units of normalised space
MODALITIES = ("ct", "mri", "xray")
LESION_ORGANS = ("right lung", "left lung", "liver")
SIZE_CLASSES = {"small": (24.0, 32.0), "medium": (36.0, 46.0), "large": (50.0, 62.0)}  # diameter, mm

# Tissue contrast per modality: grey value of each tissue in a slice (0 black, 1 white).
# As on real scans, neither modality's grey value fixes the other's: on non-contrast CT the soft
# tissues (heart, liver, spleen: 40-60 HU) lie within a few grey levels while T2 MRI tells them
# apart; on T2 MRI air, lung and bone are all dark while CT tells them apart. A per-pixel grey-level
# table is therefore a baseline, not the answer (notebook 01).
SLICE_CONTRAST = {
    #         air  body  lung  heart liver spleen bone  lesion
    "ct": dict(air=0.0, body=0.42, lung=0.07, heart=0.52, liver=0.58, spleen=0.54, bone=0.96, lesion=0.36),
    "mri": dict(air=0.0, body=0.48, lung=0.05, heart=0.22, liver=0.30, spleen=0.62, bone=0.12, lesion=0.92),
}
# Linear attenuation (per unit length) for the X-ray projection; lesions are dense nodules.
ATTENUATION = dict(air=0.0, body=1.0, lung=0.18, heart=1.05, liver=1.06, spleen=1.04, bone=2.6, lesion=4.0)
XRAY_GAIN = 0.75  # image = 1 - exp(-gain * line integral)


@dataclass
class Ellipsoid:
    tissue: str
    center: tuple[float, float, float]  # (x, y, z)
    axes: tuple[float, float, float]  # semi-axes (a, b, c) along x, y, z
    angle: float = 0.0  # rotation in the x-z (image) plane, radians
    parent: str = "body"  # the tissue it sits in (for the X-ray's additive attenuation)


@dataclass
class Lesion:
    organ: str  # one of LESION_ORGANS
    center: tuple[float, float]  # (x, z) in the slice plane
    diameter_mm: float
    size_class: str  # "small" | "medium" | "large"

    @property
    def side(self) -> str:  # the patient's side (radiological convention: right = image left)
        return "right" if self.center[0] < 0 else "left"


@dataclass
class Patient:
    pid: str
    shapes: list[Ellipsoid]  # painting order: later shapes cover earlier ones in a slice
    lesions: list[Lesion]
    texture: list[tuple[float, float, float, float]] = field(default_factory=list)  # (kx, kz, phase, amp)
    bias: tuple[float, float] = (0.0, 0.0)  # MRI bias-field gradient (gx, gz)
    contrast_jitter: float = 0.0  # per-patient scanner variation of tissue grey values

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Patient":
        return Patient(
            pid=d["pid"],
            shapes=[Ellipsoid(s["tissue"], tuple(s["center"]), tuple(s["axes"]), s["angle"], s["parent"]) for s in d["shapes"]],
            lesions=[Lesion(l["organ"], tuple(l["center"]), l["diameter_mm"], l["size_class"]) for l in d["lesions"]],
            texture=[tuple(t) for t in d["texture"]],
            bias=tuple(d["bias"]),
            contrast_jitter=d["contrast_jitter"],
        )


# ----------------------------------------------------------------------------- anatomy
def make_patient(index: int, seed: int = 0) -> Patient:
    """The ``index``-th virtual patient of the data set with seed ``seed`` (deterministic)."""
    rng = np.random.default_rng([seed, index])
    j = lambda s: float(rng.uniform(-s, s))  # noqa: E731  (jitter)
    bx, bz = 0.80 + j(0.06), 0.90 + j(0.04)
    shapes = [
        Ellipsoid("body", (j(0.02), 0.0, 0.04 + j(0.02)), (bx, 0.50, bz), j(0.04), parent="air"),
        Ellipsoid("lung", (-0.36 + j(0.03), 0.0, -0.33 + j(0.04)), (0.25 + j(0.03), 0.32, 0.42 + j(0.04)), 0.12 + j(0.05)),
        Ellipsoid("lung", (0.36 + j(0.03), 0.0, -0.33 + j(0.04)), (0.24 + j(0.03), 0.32, 0.40 + j(0.04)), -0.12 + j(0.05)),
        Ellipsoid("bone", (j(0.01), 0.0, 0.12 + j(0.02)), (0.05 + j(0.006), 0.10, 0.82), j(0.02)),  # spine
        Ellipsoid("heart", (0.10 + j(0.03), 0.05, -0.08 + j(0.03)), (0.22 + j(0.03), 0.24, 0.19 + j(0.02)), -0.5 + j(0.15)),
        Ellipsoid("liver", (-0.30 + j(0.03), 0.0, 0.45 + j(0.03)), (0.40 + j(0.03), 0.30, 0.24 + j(0.03)), -0.25 + j(0.08)),
        Ellipsoid("spleen", (0.42 + j(0.03), 0.05, 0.44 + j(0.03)), (0.15 + j(0.02), 0.15, 0.17 + j(0.02)), 0.3 + j(0.1)),
        Ellipsoid("bone", (-0.28 + j(0.02), -0.1, -0.80 + j(0.02)), (0.22, 0.04, 0.035), 0.25 + j(0.05)),
        Ellipsoid("bone", (0.28 + j(0.02), -0.1, -0.80 + j(0.02)), (0.22, 0.04, 0.035), -0.25 + j(0.05)),
    ]
    organ_shape = {"right lung": shapes[1], "left lung": shapes[2], "liver": shapes[5]}
    n_lesions = int(rng.choice(4, p=[0.25, 0.35, 0.25, 0.15]))
    lesions: list[Lesion] = []
    while len(lesions) < n_lesions:
        organ = str(rng.choice(LESION_ORGANS))
        size_class = str(rng.choice(list(SIZE_CLASSES)))
        diameter = float(rng.uniform(*SIZE_CLASSES[size_class]))
        center = _point_inside(organ_shape[organ], rng, margin=0.55)
        r = diameter / FOV_MM * 2 / 2  # radius in normalised units
        if all(math.dist(center, l.center) > r + l.diameter_mm / FOV_MM + 0.04 for l in lesions):
            lesions.append(Lesion(organ, center, round(diameter, 1), size_class))
    for l in lesions:
        shapes.append(Ellipsoid("lesion", (l.center[0], 0.0, l.center[1]), (l.diameter_mm / FOV_MM,) * 3,
                                0.0, parent="lung" if "lung" in l.organ else "liver"))
    texture = [(float(rng.uniform(1, 4)), float(rng.uniform(1, 4)), float(rng.uniform(0, 2 * np.pi)),
                float(rng.uniform(0.01, 0.025))) for _ in range(3)]
    bias = (float(rng.uniform(-0.12, 0.12)), float(rng.uniform(-0.12, 0.12)))
    return Patient(f"p{index:05d}", shapes, lesions, texture, bias, contrast_jitter=j(0.03))


def _point_inside(shape: Ellipsoid, rng: np.random.Generator, margin: float) -> tuple[float, float]:
    """A uniform point within ``margin`` of the centre of the shape's slice ellipse."""
    rho, t = margin * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
    u, v = rho * shape.axes[0] * math.cos(t), rho * shape.axes[2] * math.sin(t)
    c, s = math.cos(shape.angle), math.sin(shape.angle)
    return (round(shape.center[0] + c * u - s * v, 4), round(shape.center[2] + s * u + c * v, 4))


# ----------------------------------------------------------------------------- rendering
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size * 2 - 1
    z, x = np.meshgrid(coords, coords, indexing="ij")  # (size, size): rows = z, cols = x
    return x, z


def _local(shape: Ellipsoid, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in the shape's own frame (un-rotated, centred)."""
    dx, dz = x - shape.center[0], z - shape.center[2]
    c, s = math.cos(shape.angle), math.sin(shape.angle)
    return c * dx + s * dz, -s * dx + c * dz


def slice_mask(shape: Ellipsoid, x: np.ndarray, z: np.ndarray, pixel: float) -> np.ndarray:
    """Anti-aliased coverage (0..1) of the shape's cross-section with the plane y = 0."""
    cut = 1 - (shape.center[1] / shape.axes[1]) ** 2
    if cut <= 0:
        return np.zeros_like(x)
    a, c = shape.axes[0] * math.sqrt(cut), shape.axes[2] * math.sqrt(cut)
    u, v = _local(shape, x, z)
    rho = np.sqrt((u / a) ** 2 + (v / c) ** 2) + 1e-12
    grad = np.sqrt((u / a**2) ** 2 + (v / c**2) ** 2) / rho + 1e-12
    dist = (rho - 1) / grad  # signed distance to the outline (first-order), normalised units
    return np.clip(0.5 - dist / (1.25 * pixel), 0.0, 1.0)  # ~1 px partial-volume edge


def chord(shape: Ellipsoid, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Length of the ray along y through the ellipsoid at each (x, z)."""
    u, v = _local(shape, x, z)
    inside = 1 - (u / shape.axes[0]) ** 2 - (v / shape.axes[2]) ** 2
    return 2 * shape.axes[1] * np.sqrt(np.clip(inside, 0, None))


def _texture(p: Patient, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Smooth tissue texture shared by every modality (it belongs to the anatomy)."""
    t = np.zeros_like(x)
    for kx, kz, phase, amp in p.texture:
        t += amp * np.cos(np.pi * (kx * x + kz * z) + phase)
    return t


def render(p: Patient, modality: str, size: int) -> np.ndarray:
    """Render patient ``p`` as ``modality`` at ``size`` x ``size`` pixels; float32 in [0, 1]."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose one of {MODALITIES}")
    x, z = _grid(size)
    if modality == "xray":
        line = np.zeros_like(x)  # line integral of attenuation: sum of (mu - mu_parent) * chord
        for s in p.shapes:
            line += (ATTENUATION[s.tissue] - ATTENUATION[s.parent]) * chord(s, x, z)
        img = 1 - np.exp(-XRAY_GAIN * line)
        img = img * (1 + 0.5 * _texture(p, x, z))
    else:
        contrast = SLICE_CONTRAST[modality]
        img = np.full_like(x, contrast["air"])
        inside = np.zeros_like(x)
        for s in p.shapes:
            m = slice_mask(s, x, z, pixel=2.0 / size)
            value = contrast[s.tissue] * (1 + p.contrast_jitter)
            img = img * (1 - m) + value * m
            inside = np.maximum(inside, m) if s.tissue == "body" else inside
        img = img + inside * _texture(p, x, z)
        if modality == "mri":  # smooth coil sensitivity (bias field), as real MRI has
            img = img * (1 + p.bias[0] * x + p.bias[1] * z)
    return np.clip(img, 0, 1).astype(np.float32)


def downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """Box (area) downsampling: how a low-resolution acquisition of the same slice looks."""
    h, w = img.shape
    return img.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
