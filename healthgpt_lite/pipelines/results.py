"""The results of ``make reproduce``: the mean and spread over seeds of every number
(``eval/aggregate.py``), the tables and figures of REPORT.md, and the targets checked on the mean."""
from __future__ import annotations

from ..eval.aggregate import mean_and_spread, pm
from ..eval.report import Report

TARGETS = [  # (name, description, threshold); met when measured >= threshold
    ("closed_accuracy", "closed-question accuracy >= 0.90", 0.90),
    ("open_exact_match", "open-question exact match >= 0.80", 0.80),
    ("open_location", "open location exact match >= 0.75", 0.75),
    ("open_size", "open size exact match >= 0.70", 0.70),
    ("reconstruction_vs_ceiling", "reconstruction SSIM >= 0.9 x VQ ceiling", 0.9),
    ("ct2mri_vs_copy", "CT->MRI SSIM >= copy-the-input + 0.15", 0.15),
    ("ct2mri_vs_table", "CT->MRI SSIM >= the grey-level table", 0.0),
    ("mri2ct_vs_copy", "MRI->CT SSIM >= copy-the-input + 0.10", 0.10),
    ("mri2ct_vs_table", "MRI->CT SSIM >= the grey-level table", 0.0),
    ("sr_vs_bicubic", "4x SR PSNR >= bicubic + 1 dB", 1.0),
    ("report2image_probe", "report->X-ray probe agreement (count and sides) >= 0.6", 0.6),
]
COMPREHENSION_ROWS = ["closed", "closed/yes_no", "closed/choice", "open", "open/open_modality", "open/open_count",
                      "open/open_location", "open/open_size", "report/bleu4", "report/rougeL_f1"]
GENERATION_COLUMNS = ["model", "teacher_forced", "copy_input", "grey_level_table", "bicubic", "lesion_free", "vq_ceiling"]


def write_results(report: Report, evaluations: list[dict]) -> None:
    """Section 6 and 7: mean and spread over seeds of every number, the tables, the targets."""
    from ..viz.overview import results_overview
    from ..viz.samples import image_grid

    runs = [e["metrics"] for e in evaluations]
    n, split = len(runs), report.metrics["config"].get("split", "test")
    mean, spread = mean_and_spread(runs)
    report.metrics.update(mean)
    report.metrics["spread"] = spread
    report.metrics["per_seed"] = {str(e["seed"]): e["metrics"] for e in evaluations}
    c, cs, b, bs = mean["comprehension"], spread["comprehension"], mean["comprehension_baselines"], spread["comprehension_baselines"]
    report.section(f"6. Evaluation on the {split} split (patients never seen in training), {n} seed(s)",
                   "Mean over seeds ± the spread (sample standard deviation). Comprehension: closed accuracy, open "
                   "exact match, report BLEU-4 / ROUGE-L; beside the model, the pixel-reference CNN (supervised on "
                   "the train images: what the pixels allow), the same CNN reading the frozen ViT tokens the model "
                   "reads (features CNN: what the frozen encoder allows), the blind text prior and the majority answer.")
    report.table([{"metric": k, "HealthGPT-lite": pm(c.get(k), cs.get(k), n),
                   **{name: pm(b[name][k], bs[name][k], n) if k in b[name] else "" for name in b}}
                  for k in COMPREHENSION_ROWS if k in c])
    report.text(f"A few answers (seed {evaluations[0]['seed']}):")
    report.table(evaluations[0]["answers"])
    g, gs = mean["generation"], spread["generation"]
    for metric, label in (("ssim", "SSIM"), ("psnr", "PSNR (dB)")):
        report.text(f"Generation, {label}: the model (greedy; report->X-ray sampled), teacher-forced (given the true "
                    "previous codes: the gap is exposure bias), the baselines and the VQ ceiling:")
        columns = [who for who in GENERATION_COLUMNS if any(who in e for e in g.values())]
        report.table([{"task": t, **{who: pm(e[who][metric], gs[t][who][metric], n) if who in e else "" for who in columns}}
                      for t, e in g.items()])
    if "probe" in g.get("report2image", {}):
        p, ps = g["report2image"]["probe"], gs["report2image"]["probe"]
        report.text("Report->X-ray, lesion-probe agreement with the report: sampled X-rays, a lesion-free X-ray for "
                    "every report (the baseline), and the real X-rays (the probe's own ceiling):")
        report.table([{"images": k, **{m: pm(v, ps[k][m], n) for m, v in d.items()}} for k, d in p.items()])
    for task, smp in evaluations[0]["samples"].items():
        cols = {"input": list(smp["inputs"])} if smp["inputs"] is not None else {}
        cols.update({"generated": list(smp["outputs"]), "target": list(smp["targets"])})
        report.figure(f"samples_{task}", image_grid(cols, title=task), f"{task}: test patients (seed {evaluations[0]['seed']}).")
    check_targets(report, runs, split)
    report.figure("overview", results_overview(report.metrics),
                  "The results at a glance (docs/figures/results_overview.png in the README is this figure).")


def measured_targets(m: dict) -> dict[str, float]:
    """Each target's measured value from one run's (or the mean's) metrics."""
    c, g = m["comprehension"], m["generation"]
    out = {"closed_accuracy": c.get("closed", 0.0), "open_exact_match": c.get("open", 0.0),
           "open_location": c.get("open/open_location", 0.0), "open_size": c.get("open/open_size", 0.0),
           "sr_vs_bicubic": g["super_resolution"]["model"]["psnr"] - g["super_resolution"]["bicubic"]["psnr"],
           "reconstruction_vs_ceiling": g["reconstruction"]["model"]["ssim"] / max(g["reconstruction"]["vq_ceiling"]["ssim"], 1e-8)}
    for t in ("ct2mri", "mri2ct"):
        out[f"{t}_vs_copy"] = g[t]["model"]["ssim"] - g[t]["copy_input"]["ssim"]
        out[f"{t}_vs_table"] = g[t]["model"]["ssim"] - g[t]["grey_level_table"]["ssim"]
    if "probe" in g.get("report2image", {}):
        out["report2image_probe"] = g["report2image"]["probe"]["generated"]["all"]
    return out


def pipeline_time_row(minutes: float, reused: list[str]) -> dict:
    """The one-seed time target. Only a run that made every artifact itself measures it; one that
    reused cached artifacts (``reused``: their names) says so and counts as not measured (met None)."""
    row = {"target": "whole pipeline, one seed, 2 CPU cores <= 30 minutes", "measured": f"{minutes:.1f}",
           "met": minutes <= 30, "seeds met": ""}
    if reused:
        row.update(measured=f"{minutes:.1f}, not end to end: {len(reused)} cached artifacts reused", met=None)
    return row


def check_targets(report: Report, runs: list[dict], split: str = "test") -> None:
    """Each target on the mean over seeds (and in how many seeds it is met); wall time per seed."""
    per_seed = [measured_targets(r) for r in runs]
    mean, spread = mean_and_spread(per_seed)
    n = len(runs)
    rows = [{"target": desc, "measured": pm(mean[name], spread[name], n), "met": bool(mean[name] >= threshold),
             "seeds met": f"{sum(s[name] >= threshold for s in per_seed)}/{n}"}
            for name, desc, threshold in TARGETS if name in mean]
    minutes = report.metrics.get("minutes_first_seed")
    if minutes is not None:
        rows.append(pipeline_time_row(minutes, report.metrics.get("reused_before_first_seed", [])))
    report.metrics["targets"] = rows
    report.section("7. Targets", f"Measured on the {split} split, mean over seeds ± spread; a missed target is reported, "
                   "never tuned on test. Differences (SSIM, dB) are model minus baseline; ratios are model / VQ ceiling.")
    report.table(rows)
