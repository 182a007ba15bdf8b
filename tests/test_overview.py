"""The README's results figure draws the measured numbers, nothing else."""
import numpy as np

from healthgpt_lite.viz.overview import results_overview


def test_bars_are_the_metrics():
    gen = {"ct2mri": {"model": {"ssim": 0.61}, "copy_input": {"ssim": 0.52}, "vq_ceiling": {"ssim": 0.93}},
           "super_resolution": {"model": {"ssim": 0.7}, "bicubic": {"ssim": 0.66}, "vq_ceiling": {"ssim": 0.9}},
           "report2image": {"model": {"ssim": 0.8}, "vq_ceiling": {"ssim": 0.95},
                            "probe": {"generated": {"count": 0.3, "all": 0.2}, "real_ceiling": {"count": 1.0, "all": 0.9}}}}
    metrics = {"comprehension": {"closed": 0.81, "open": 0.42, "report/bleu4": 0.3}, "generation": gen,
               "config": {"preset": "tiny", "profile": "cpu"}}
    comp, generation, probe = results_overview(metrics).axes
    assert [round(p.get_height(), 2) for p in comp.patches] == [0.81, 0.42, 0.3]
    heights = [p.get_height() for p in generation.patches]  # model bars, then baselines, then ceilings
    np.testing.assert_allclose(heights, [0.61, 0.7, 0.8, 0.52, 0.66, np.nan, 0.93, 0.9, 0.95])
    assert [round(p.get_height(), 2) for p in probe.patches] == [0.3, 0.2, 1.0, 0.9]
