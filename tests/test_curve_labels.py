"""Every curve figure the notebooks show has labelled axes and a legend."""
import pandas as pd

from healthgpt_lite.training.trainer import plot_curves
from healthgpt_lite.viz.recipes import overlay_curves


def _labels(fig):
    ax = fig.axes[0]
    return ax.get_xlabel(), ax.get_ylabel(), [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_curves_labels_axes_and_legend():
    df = pd.DataFrame({"step": [0, 1, 2], "train/loss": [3.0, 2.0, 1.5], "val/loss": [3.1, None, 1.8]})
    assert _labels(plot_curves(df, ["train/loss", "val/loss"], logy=True)) == \
        ("training step", "loss (log scale)", ["train/loss", "val/loss"])
    assert _labels(plot_curves(df, ["val/loss"]))[1] == "val/loss"
    assert _labels(plot_curves(df, ["train/loss"], ylabel="nats"))[1] == "nats"


def test_overlay_curves_names_the_metric_and_the_runs():
    runs = {"Qilin": pd.DataFrame({"step": [0, 1], "train/loss": [2.0, 1.0]}),
            "HealthGPT": pd.DataFrame({"step": [0, 1], "train/loss": [2.5, 1.2]})}
    assert _labels(overlay_curves(runs, "train/loss", logy=False)) == ("training step", "train/loss", ["Qilin", "HealthGPT"])
