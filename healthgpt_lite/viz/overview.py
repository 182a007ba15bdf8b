"""The results at a glance: one figure from ``results/metrics.json`` (``make reproduce``), the
one the README shows. Every bar is a measured number (the mean over seeds, with the spread as an
error bar when there are several); dashed lines are the project's targets."""
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
BARS = [("model", "HealthGPT-lite", "tab:blue"), ("baseline", "best baseline (copy, grey table, bicubic)", "tab:gray"),
        ("vq_ceiling", "VQ ceiling (encode→decode target)", "tab:green")]
BASELINES = ("copy_input", "grey_level_table", "bicubic", "lesion_free")


def best_baseline(entry: dict, metric: str = "ssim") -> dict | None:
    """The strongest baseline of one generation task (the one the model must beat)."""
    found = [entry[b] for b in BASELINES if b in entry]
    return max(found, key=lambda e: e[metric]) if found else None


def _comprehension(ax, scores: dict, spread: dict, baselines: dict) -> None:
    keys = [(k, label) for k, label in COMPREHENSION if k in scores]
    x, width = np.arange(len(keys)), 0.27
    ax.bar(x - width, [scores[k] for k, _ in keys], width, yerr=[spread.get(k, 0) for k, _ in keys],
           color="tab:blue", label="HealthGPT-lite")
    for i, (name, color) in enumerate((("pixel CNN", "tab:green"), ("blind text prior", "tab:gray"))):
        if name in baselines:
            ax.bar(x + i * width, [baselines[name].get(k, np.nan) for k, _ in keys], width, color=color, label=name)
    ax.set_xticks(x, [label for _, label in keys], fontsize=8)
    targets = {"closed": 0.90, "open": 0.80, "open/open_location": 0.75, "open/open_size": 0.70}
    for i, (k, _) in enumerate(keys):
        if k in targets:
            ax.hlines(targets[k], i - 0.45, i + 0.45, colors="k", linestyles="--", label="target" if k == "closed" else None)
    ax.set_ylim(0, 1.25), ax.set_ylabel("accuracy / exact match / BLEU, ROUGE")
    ax.set_title("Comprehension (test split)"), ax.legend(loc="upper center", ncol=4, fontsize=7)


def _generation(ax, scores: dict) -> None:
    tasks = [(t, label) for t, label in GENERATION if t in scores]
    x, width = np.arange(len(tasks)), 0.27
    for i, (who, label, color) in enumerate(BARS):
        values = []
        for t, _ in tasks:
            e = scores[t]
            e = best_baseline(e) if who == "baseline" else e.get(who)
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
    kinds = [k for k in ("generated", "lesion_free", "real_ceiling") if k in probe]
    colors = {"generated": "tab:blue", "lesion_free": "tab:gray", "real_ceiling": "tab:green"}
    labels = {"generated": "generated (sampled)", "lesion_free": "lesion-free X-ray", "real_ceiling": "real X-rays (ceiling)"}
    metrics = [m for m in probe["generated"] if m != "all"] + ["all"]
    x, width = np.arange(len(metrics)), 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        ax.bar(x + i * width - 0.4 + width / 2, [probe[kind].get(m, np.nan) for m in metrics], width,
               color=colors[kind], label=labels[kind])
    ax.hlines(0.6, len(metrics) - 1.45, len(metrics) - 0.55, colors="k", linestyles="--", label="target")
    ax.set_xticks(x, metrics), ax.set_ylim(0, 1.25), ax.set_ylabel("agreement with the report")
    ax.set_title("Report→X-ray: does the image\nshow what the report says? (probe)"), ax.legend(loc="upper center", ncol=3, fontsize=7)


def results_overview(metrics: dict) -> Figure:
    """Three panels: comprehension scores, generation SSIM beside its baselines, the report probe."""
    fig = Figure(figsize=(15, 3.8))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.4, 1.2, 0.8]})
    _comprehension(axes[0], metrics["comprehension"], metrics.get("spread", {}).get("comprehension", {}),
                   metrics.get("comprehension_baselines", {}))
    _generation(axes[1], metrics["generation"])
    _probe(axes[2], metrics["generation"])
    cfg = metrics.get("config", {})
    seeds = cfg.get("seeds", [cfg.get("seed")])
    fig.suptitle(f"healthgpt_lite, preset {cfg.get('preset')}, profile {cfg.get('profile')}, "
                 f"{'mean of seeds ' + str(seeds) if len(seeds) > 1 else 'seed ' + str(seeds[0])}: "
                 "test-split patients never seen in training")
    fig.tight_layout()
    return fig
