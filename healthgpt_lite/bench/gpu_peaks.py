"""Peak dense bf16 FLOP/s of common GPUs: the denominator of MFU.

The vendors' datasheet numbers for dense (not 2:4 sparse) bf16 tensor-core matmuls. A GPU
not in the table, or a different clock or power limit, needs ``--peak-tflops``: MFU is then
measured against that number, and the JSON says where the peak came from.
"""
from __future__ import annotations

from ..errors import InputError

# (substring of torch.cuda.get_device_name(), dense bf16 FLOP/s); the first match wins, so the
# more specific names come first
BF16_PEAKS: tuple[tuple[str, float], ...] = (
    ("GH200", 989e12),
    ("H200", 989e12),  # H200 SXM: the H100 SXM's tensor cores, more and faster memory
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # H100 SXM
    ("B200", 2250e12),
    ("A100", 312e12),  # SXM and PCIe
    ("A10G", 70e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),  # no bf16: fp16 tensor cores
)


def bf16_peak(device_name: str, override_tflops: float | None = None) -> tuple[float | None, str]:
    """(peak FLOP/s, where it came from) for ``device_name``; (None, why) when unknown."""
    if override_tflops is not None:
        if override_tflops <= 0:
            raise InputError(f"--peak-tflops {override_tflops}: give the GPU's dense bf16 peak in TFLOP/s, e.g. 989")
        return override_tflops * 1e12, "--peak-tflops"
    for name, peak in BF16_PEAKS:
        if name.lower() in device_name.lower():
            return peak, f"table: {name}"
    return None, f"{device_name!r} is not in bench/gpu_peaks.py; pass --peak-tflops for an MFU"
