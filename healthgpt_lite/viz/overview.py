"""The results at a glance: one figure from ``results/metrics.json`` (``make reproduce``), the
one the README shows. Every bar is a measured number; dashed lines are the issue's targets."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

COMPREHENSION = [  # (metrics key, label)
    ("closed", "closed\n(all)"), ("open", "open\n(all)"), ("open/open_modality", "open:\nmodality"),
    ("open/open_count", "open:\ncount"), ("open/open_size", "open:\nsize"), ("open/open_location", "open:\nlocation"),
    ("report/bleu4", "report\nBLEU-4"), ("report/rougeL_f1", "report\nROUGE-L"),
]
GENERATION = [("ct2mri", "CT→MRI"), ("mri2ct", "MRI→CT"), ("super_resolution", "4× SR"),
              ("reconstruction", "recon."), ("report2image", "report→X-ray")]
BARS = [("model", "HealthGPT-lite", "tab:blue"), ("baseline", "copy input / bicubic", "tab:gray"),
        ("vq_ceiling", "VQ ceiling (encode→decode target)", "tab:green")]


def _comprehension(ax, scores: dict) -> None:
    keys = [(k, label) for k, label in COMPREHENSION if k in scores]
    ax.bar(range(len(keys)), [scores[k] for k, _ in keys], color="tab:blue")
    ax.set_xticks(range(len(keys)), [label for _, label in keys], fontsize=8)
    ax.hlines([0.95, 0.80], [-0.4, 0.6], [0.4, 1.4], colors="k", linestyles="--", label="target")
    ax.set_ylim(0, 1.25), ax.set_title("Comprehension (test split)"), ax.legend(loc="upper right", fontsize=8)


def _generation(ax, scores: dict) -> None:
    tasks = [(t, label) for t, label in GENERATION if t in scores]
    x, width = np.arange(len(tasks)), 0.27
    for i, (who, label, color) in enumerate(BARS):
        values = []
        for t, _ in tasks:
            e = scores[t]
            e = e.get(who) or (e.get("copy_input") or e.get("bicubic") if who == "baseline" else None)
            values.append(e["ssim"] if e else np.nan)
        ax.bar(x + (i - 1) * width, values, width, color=color, label=label)
    ax.set_xticks(x, [label for _, label in tasks], fontsize=8)
    ax.set_ylim(0, 1.25), ax.set_ylabel("SSIM"), ax.set_title("Generation (test split)")
    ax.legend(loc="upper center", ncol=3, fontsize=7)


def _probe(ax, scores: dict) -> None:
    probe = scores.get("report2image", {}).get("probe")
    if not probe:
        ax.set_axis_off()
        return
    kinds = [k for k in ("generated", "real_ceiling") if k in probe]
    metrics = [m for m in probe["generated"] if m != "all"] + ["all"]
    x, width = np.arange(len(metrics)), 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        ax.bar(x + i * width - 0.4 + width / 2, [probe[kind].get(m, np.nan) for m in metrics], width,
               color="tab:blue" if kind == "generated" else "tab:green", label="generated X-rays" if kind == "generated" else "real X-rays (ceiling)")
    ax.axhline(0.8, color="k", ls="--", label="target")
    ax.set_xticks(x, metrics), ax.set_ylim(0, 1.25)
    ax.set_title("Report→X-ray: does the image\nshow what the report says? (probe)"), ax.legend(loc="upper center", ncol=3, fontsize=7)


def results_overview(metrics: dict) -> Figure:
    """Three panels: comprehension scores, generation SSIM beside its baselines, the report probe."""
    fig = Figure(figsize=(15, 3.8))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.4, 1.2, 0.8]})
    _comprehension(axes[0], metrics["comprehension"])
    _generation(axes[1], metrics["generation"])
    _probe(axes[2], metrics["generation"])
    cfg = metrics.get("config", {})
    fig.suptitle(f"healthgpt_lite, preset {cfg.get('preset')}, profile {cfg.get('profile')}, seed {cfg.get('seed')}: "
                 "test-split patients never seen in training")
    fig.tight_layout()
    return fig
