# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · Evaluate the tiny HealthGPT, and talk to it
#
# **Learning objectives.** After this notebook you can
# 1. evaluate both halves of HealthGPT the way the paper does: accuracy on closed questions,
#    exact match on open ones, BLEU/ROUGE-L on reports; SSIM/PSNR/MSE on generated images;
# 2. read every number next to an honest baseline (majority answer, blind text prior; copy the
#    input, a grey-level table, bicubic upsampling, a lesion-free X-ray), next to what the pixels
#    allow and next to the ceiling the VQ tokenizer allows, and say which the model beats;
# 3. judge report→image without a pixel target, with a lesion probe trained on real phantoms,
#    and explain why a one-to-many task is sampled, not decoded greedily;
# 4. use the model interactively on phantoms and on real DICOM slices.
#
# docs/PAPERS.md §4.

# %% tags=["parameters"]
PROFILE = "cpu"  # cpu: the learning run (reuses `make reproduce` artifacts) | smoke: CI, learns nothing
PRESET = "tiny"
SEED = 0
ARTIFACTS_DIR = None
DATA_DIR = None
OVERRIDES = {}
LIMIT = None  # records per task to evaluate (None: the whole test split)

# %%
from healthgpt_lite.course.notebook import setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
cfg = run.cfg
limit = LIMIT if LIMIT is not None else (4 if PROFILE == "smoke" else None)
run

# %% [markdown]
# ## The trained model
#
# All three stages, load-or-train (notebooks 06-08 train them; here they are loaded).

# %%
from healthgpt_lite.model.inference import HealthGPTLite
from healthgpt_lite.training.pipeline import ensure_stages
from healthgpt_lite.training.stages import ORDER

ensure_stages(cfg, ORDER, run.artifacts_dir, run.data_dir, run.progress)
gpt = HealthGPTLite.from_config(cfg, run.artifacts_dir, stages=ORDER)
data_dir = run.data_dir

# %% [markdown]
# ## Comprehension, beside what the text alone and the pixels allow
#
# Closed questions (yes/no, multiple choice) are scored by accuracy, open ones (modality, count,
# location, size) by exact match after normalisation (case, punctuation, articles, and
# Chinese/English synonyms such as 是 = yes). Four references sit beside the model:
#
# * the **majority answer** of each question type (notebook 01): the floor;
# * the **blind text prior**: the most common train answer of each exact question, all that the
#   text alone tells (an LLM that never looks at the image can learn this much);
# * the **pixel-reference CNN**: a small CNN trained *with supervision* on the same train images
#   to read the facts the questions ask about. It is not a rival (it is handed the answer's
#   structure) but a yardstick: how much the pixels hold at 64 px;
# * the **features CNN**: the same kind of reader trained on the frozen ViT tokens the model
#   itself reads (`hidden_states[comp_layer]`, on their 8x8 grid). Pixel CNN high and features
#   CNN low: the frozen encoder lost the fact. Both high and the model low: the encoder kept it,
#   and the adapter, the H-LoRA plugin and the LLM did not learn to read it.

# %%
import pandas as pd

from healthgpt_lite.eval.evaluate import comprehension_baselines, evaluate_comprehension

comp = evaluate_comprehension(gpt, data_dir, "test", limit=None if limit is None else 8 * limit, progress=run.progress)
scores = comp["scores"]
references = comprehension_baselines(data_dir, "test", cfg.vision.image_size, cfg.eval.pixel_reference_steps,
                                     seed=cfg.seed, progress=run.progress, encoder=gpt.model.vision)
keys = [k for k in ("closed", "closed/yes_no", "closed/choice", "open", "open/open_modality", "open/open_count",
                    "open/open_location", "open/open_size") if k in scores]
comp_table = pd.DataFrame({"HealthGPT-lite": {k: scores[k] for k in keys},
                           **{name: {k: s.get(k) for k in keys} for name, s in references.items()}}).round(3)
comp_table

# %% [markdown]
# Reports are scored against the reference text (BLEU-4 on words, per character for Chinese;
# ROUGE-L):

# %%
{k: round(v, 3) for k, v in scores.items() if k.startswith("report/")}

# %% [markdown]
# Some answers, right and wrong:

# %%
from healthgpt_lite.eval.metrics import exact_match

rows = pd.DataFrame(comp["rows"])
rows["correct"] = [exact_match(p, a) for p, a in zip(rows["prediction"], rows["answer"])]
rows[rows.question_type != "report"][["modality", "lang", "question", "answer", "prediction", "correct"]].head(12)

# %% [markdown]
# ## Generation, with baselines and the VQ ceiling
#
# * **copy the input**: a model that learned nothing but the identity (CT→MRI, MRI→CT);
# * **grey-level table**: the best per-pixel rule, fit on train (notebook 01);
# * **bicubic**: plain interpolation of the low-resolution input (super-resolution);
# * **lesion-free X-ray**: for report→X-ray, always drawing a healthy chest;
# * **VQ ceiling**: the target encoded and decoded: no token sequence can do better;
# * **teacher-forced**: the model's most likely code at every cell *given the true codes
#   before it*, as in training. The gap between it and the model's own (greedy) image is
#   exposure bias: what it loses by building on its own mistakes.
#
# Report→X-ray is one-to-many (a report does not fix the anatomy), so its images are *sampled*
# (temperature `cfg.eval.temperature`, `cfg.eval.samples` draws per report, scores averaged);
# every other task is decoded greedily.
#
# Report→X-ray has no pixel target; a **lesion probe** (a small CNN trained on fresh phantoms
# that are in no split) reads lesion count and sides off each X-ray instead (below). All its
# settings come from the config (`cfg.eval.probe_*`):

# %%
print({k: v for k, v in vars(cfg.eval).items() if k.startswith("probe_")}, "image size", cfg.vq.resolution)

# %%
from healthgpt_lite.eval.evaluate import evaluate_generation
from healthgpt_lite.eval.probe import train_probe_from_config

probe = train_probe_from_config(cfg, progress=run.progress)
gen = evaluate_generation(gpt, data_dir, "test", limit=limit, probe=probe, progress=run.progress)
columns = ["model", "teacher_forced", "copy_input", "grey_level_table", "bicubic", "lesion_free", "vq_ceiling"]
gen_table = pd.DataFrame([{"task": task, "metric": metric, **{w: e[w][metric] for w in columns if w in e}}
                          for task, e in gen["scores"].items() for metric in ("ssim", "psnr")]).set_index(["task", "metric"])
gen_table.round(3)

# %% [markdown]
# ## Which baseline does the model beat, and by how much?
#
# Read straight from the tables above (this run's numbers): for each task the model's SSIM and
# PSNR minus each baseline's, and the share of the VQ ceiling it reaches.

# %%
baseline_names = {"copy_input": "copy", "grey_level_table": "grey table", "bicubic": "bicubic", "lesion_free": "lesion-free"}
for task, e in gen["scores"].items():
    parts = [f"{name}: {e['model']['ssim'] - e[key]['ssim']:+.3f} SSIM, {e['model']['psnr'] - e[key]['psnr']:+.1f} dB"
             for key, name in baseline_names.items() if key in e]
    share = e["model"]["ssim"] / e["vq_ceiling"]["ssim"]
    gap = e["teacher_forced"]["ssim"] - e["model"]["ssim"]
    print(f"{task:>16}: {share:.0%} of the VQ ceiling; teacher-forced {gap:+.3f} SSIM above its own decoding"
          + ("; vs " + "; ".join(parts) if parts else ""))
for k in ("closed", "open/open_location", "open/open_size"):
    if k in scores:
        best = max((name for name in references if "CNN" not in name), key=lambda n: references[n].get(k, 0))
        readers = "; ".join(f"{name} {references[name][k]:.3f}" for name in ("pixel CNN", "features CNN") if name in references)
        print(f"{k:>18}: model {scores[k]:.3f} vs {best} {references[best][k]:.3f} "
              f"({scores[k] - references[best][k]:+.3f}); {readers}")

# %% [markdown]
# Generated images beside their inputs and targets:

# %%
from healthgpt_lite.viz.samples import image_grid

for task, s in gen["samples"].items():
    cols = {"input": list(s["inputs"])} if s["inputs"] is not None else {}
    cols.update({"generated": list(s["outputs"]), "target": list(s["targets"])})
    display(image_grid(cols, title=task))

# %% [markdown]
# ## Report → X-ray: does the image show what the report says?
#
# There is no pixel target for report→image (a report does not fix the body's shape), so the
# lesion probe reads lesion count and sides off each generated X-ray and we compare with the
# report. A lesion-free X-ray for every report is the baseline (it is right exactly for the
# healthy patients); the probe's reading of the *real* X-rays is its own ceiling.

# %%
pd.DataFrame(gen["scores"]["report2image"]["probe"]).round(3)

# %% [markdown]
# Why sample? The greedy image takes the most likely code in every cell, and for almost every
# cell that is healthy tissue; samples draw lesions where the report puts them (or fail to):

# %%
from healthgpt_lite.data import load_records
from healthgpt_lite.viz import widgets as demo

report_record = next(r for r in load_records(data_dir / "test.json") if r["task"] == "report2image"
                     and "No focal lesion" not in r["conversations"][0]["value"])
report = report_record["conversations"][0]["value"].split(": ", 1)[1]
print(report)
demo.draw_from_report(gpt, report, n=4, temperature=cfg.eval.temperature, top_k=cfg.eval.top_k, seed=cfg.seed)

# %% [markdown]
# ## Talk to it
#
# Each control below calls a plain function; the notebook calls each once directly too, so an
# error cannot hide inside a widget.

# %%
import ipywidgets as widgets

patients = sorted({r["patient"] for r in load_records(data_dir / "test.json")})
print(demo.ask(gpt, data_dir, patients[0], "ct", "How many lesions are there?"))
_ = widgets.interact(lambda patient, modality, question: print(demo.ask(gpt, data_dir, patient, modality, question)),
                     patient=patients, modality=["ct", "mri", "xray"], question="Where is the largest lesion located?")

# %%
display(demo.convert(gpt, data_dir, patients[0], "CT -> MRI"))
_ = widgets.interact(lambda patient, direction: display(demo.convert(gpt, data_dir, patient, direction)),
                     patient=patients, direction=list(demo.CONVERSIONS))

# %%
display(demo.upscale(gpt, data_dir, patients[0], "mri"))
_ = widgets.interact(lambda patient, modality: display(demo.upscale(gpt, data_dir, patient, modality)),
                     patient=patients, modality=["ct", "mri"])

# %% [markdown]
# Inside the comprehension plugin: for each token, how much each of the k experts contributes
# (the router's softmax weights) in the last layers:

# %%
display(demo.router_figure(gpt, data_dir, patients[0], "ct", "How many lesions are there?"))
_ = widgets.interact(lambda patient, modality, question: display(demo.router_figure(gpt, data_dir, patient, modality, question)),
                     patient=patients, modality=["ct", "mri", "xray"], question="How many lesions are there?")

# %% [markdown]
# ## Real scans
#
# `answer` and `generate_image` take real files too, and whatever `load_image` returns (a
# `(3, H, W)` tensor) or a numpy array. pydicom ships two small real slices: an axial CT through a
# vertebra (`CT_small.dcm`, 128×128) and an axial MR slice (`MR_small.dcm`, 64×64). The model has
# only ever seen our synthetic coronal torso phantoms.

# %%
from pathlib import Path

from pydicom.data import get_testdata_file

from healthgpt_lite.data import load_image
from healthgpt_lite.viz.plots import show_scans

real = {"CT": get_testdata_file("CT_small.dcm"), "MRI": get_testdata_file("MR_small.dcm")}
questions = ["What imaging modality was used for this image?", "How many lesions are there?",
             "Is there a lesion in the liver?"]
real_answers = pd.DataFrame({f"{truth} ({Path(path).name})": {q: gpt.answer(load_image(path), q) for q in questions}
                             for truth, path in real.items()})
real_answers

# %%
show_scans([load_image(p, size=cfg.vq.resolution) for p in real.values()]
           + [gpt.generate_image("Convert this CT image into an MRI image.", image=real["CT"])],
           [f"real {k} ({Path(p).name})" for k, p in real.items()] + ["real CT 'converted' to MRI"])

# %% [markdown]
# What this run says about real scans, from the table above:

# %%
modality_q = questions[0]
for truth, path in real.items():
    said = real_answers.loc[modality_q, f"{truth} ({Path(path).name})"]
    verdict = ("no answer" if not said.strip() else "right" if truth.lower() in said.lower().split()
               or said.strip().lower() == truth.lower() else "wrong")
    print(f"{Path(path).name} is a real {truth}; asked its modality the model says {said!r}: {verdict}")
counts = {q: sorted(set(real_answers.loc[q])) for q in questions[1:]}
print("its other answers on the two real slices:", counts)

# %% [markdown]
# How to read it. The only thing the model could learn that transfers is the **grey-level
# character** of each modality in our phantoms (our CT is mid-grey soft tissue with bright bone,
# our MRI has bright fat and dark bone, our X-ray is a projection). A real slice that happens to
# share those statistics may get its modality right, one that does not (a small axial MR crop,
# whose contrast matches none of our torso phantoms) is read as whatever phantom it resembles most,
# and the answer above shows which. What it **cannot** tell about a real scan: lesion counts and
# locations (it learned where lesions sit in *our* coronal torso, not in an axial slice),
# organs it never saw (a vertebra in cross-section is in no training image), and anything a radiologist would ask.
# Where the answers are well-formed (a `cpu` run; `smoke` often answers nothing), that is the
# *language* half generalising; the *seeing* half only knows phantoms. Out-of-distribution input
# is handled cleanly, and answered as confidently as a phantom: the model has no way to say
# "I have never seen this".

# %% [markdown]
# ## Summary
#
# * Comprehension is scored per question type, modality and language; generation per task,
#   always beside copy-the-input / bicubic and the VQ ceiling.
# * Two supervised readers bound comprehension from above: the pixel CNN (what the image shows)
#   and the features CNN (what the frozen encoder kept); the model's distance to the second is
#   what its adapter, plugin and LLM did not learn.
# * Report→image is judged by what a probe reads off the image, not by pixels.
# * Every widget is a plain function called once directly, so papermill checks it.
# * On real DICOM slices the model answers in the right form but knows only phantoms: the
#   modality answer is what it resembles among our phantoms, not what it is.
#
# ## Check your understanding
#
# 1. Why is "copy the input" a meaningful baseline for CT→MRI, and what does beating it by 0.15
#    SSIM mean?
#
#    <details><summary>Answer</summary>
#
#    CT and MRI of one patient share the anatomy, and SSIM rewards structure, so the input
#    itself already scores well. Beating it means the model did more than keep the shapes: it
#    changed grey levels where the modalities differ (organs with equal CT values but different
#    MRI values) in the right direction. The grey-level table is the harder baseline for that.
#
#    </details>
#
# 2. Why can no model beat the VQ ceiling, and what would you change to raise it?
#
#    <details><summary>Answer</summary>
#
#    Every generated image is the VQ decoder's output for some code grid; the target's own codes
#    are (up to the encoder's choice) the best grid there is. To raise it: more codes, a finer
#    grid (smaller downsampling factor f), or a better-trained tokenizer (notebook 03).
#
#    </details>
#
# 3. What does the probe's accuracy on *real* X-rays tell you about its verdict on generated ones?
#
#    <details><summary>Answer</summary>
#
#    It is the probe's own ceiling: where it misreads real X-rays, its reading of generated ones
#    is no more reliable. Judge the generated images' agreement against that row, not against 1.
#
#    </details>
#
# **Exercise:** [exercises/06_metrics](../exercises/README.md): write PSNR, SSIM and the answer
# normalisation yourself.
