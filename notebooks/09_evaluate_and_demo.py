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
# 2. read every generation number next to an honest baseline (copy the input, bicubic
#    upsampling) and next to the ceiling the VQ tokenizer allows;
# 3. judge report→image without a pixel target, with a lesion probe trained on real phantoms;
# 4. use the model interactively on phantoms and on real DICOM slices.
#
# REFERENCE §4.

# %% tags=["parameters"]
PROFILE = "smoke"
PRESET = "tiny"
SEED = 0
ARTIFACTS_DIR = None
DATA_DIR = None
OVERRIDES = {}
LIMIT = None  # records per task to evaluate (None: the whole test split)

# %%
from healthgpt_lite.notebook import setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
cfg = run.cfg
limit = LIMIT if LIMIT is not None else (4 if PROFILE == "smoke" else None)
run

# %% [markdown]
# ## The trained model
#
# All three stages, load-or-train (notebooks 06-08 train them; here they are loaded).

# %%
from healthgpt_lite.model.healthgpt import HealthGPTLite
from healthgpt_lite.training.pipeline import ensure_stages
from healthgpt_lite.training.stages import ORDER

ensure_stages(cfg, ORDER, run.artifacts_dir, run.data_dir, run.progress)
gpt = HealthGPTLite.from_config(cfg, run.artifacts_dir, stages=ORDER)
data_dir = run.data_dir

# %% [markdown]
# ## Comprehension
#
# Closed questions (yes/no, multiple choice) are scored by accuracy, open ones (modality, count,
# location, size) by exact match after normalisation (case, punctuation, articles, and
# Chinese/English synonyms such as 是 = yes). Notebook 01's majority-answer baseline is the floor.

# %%
import pandas as pd

from healthgpt_lite.eval.evaluate import evaluate_comprehension

comp = evaluate_comprehension(gpt, data_dir, "test", limit=None if limit is None else 8 * limit, progress=run.progress)
scores = comp["scores"]
pd.Series({k: v for k, v in scores.items() if not k.startswith("n/")}, name="score").to_frame().round(3)

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
# * **bicubic**: plain interpolation of the low-resolution input (super-resolution);
# * **VQ ceiling**: the target encoded and decoded: no token sequence can do better.

# %%
from healthgpt_lite.eval.evaluate import evaluate_generation
from healthgpt_lite.eval.probe import train_probe

probe = train_probe(cfg.vq.resolution, n_patients=200 if PROFILE == "smoke" else 2000,
                    steps=20 if PROFILE == "smoke" else 600, seed=cfg.seed, progress=run.progress)
gen = evaluate_generation(gpt, data_dir, "test", limit=limit, probe=probe, progress=run.progress)
table = []
for task, entry in gen["scores"].items():
    for who in ("model", "copy_input", "bicubic", "vq_ceiling"):
        if who in entry:
            table.append({"task": task, "images": entry["n"], "who": who, **entry[who]})
pd.DataFrame(table).set_index(["task", "who"]).round(3)

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
# report. Its reading of the *real* X-rays of the same patients is its own ceiling.

# %%
pd.DataFrame(gen["scores"]["report2image"]["probe"]).round(3)

# %% [markdown]
# ## Talk to it
#
# Each control below calls a plain function; the notebook calls each once directly too, so an
# error cannot hide inside a widget.

# %%
import ipywidgets as widgets

from healthgpt_lite.data import load_records
from healthgpt_lite.viz import widgets as demo

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
# `answer` and `generate_image` take real files too. The model has only ever seen coronal
# phantoms, so expect wrong answers on an axial CT slice; what matters here is that real input
# is handled cleanly (and that the *kind* of mistake teaches something about domain shift).

# %%
from pydicom.data import get_testdata_file

from healthgpt_lite.data import load_image
from healthgpt_lite.viz.plots import show_scans

ct = get_testdata_file("CT_small.dcm")
print("What imaging modality was used? ->", gpt.answer(ct, "What imaging modality was used for this image?"))
print("How many lesions are there?     ->", gpt.answer(ct, "How many lesions are there?"))
show_scans([load_image(ct, size=cfg.vq.resolution),
            gpt.generate_image("Convert this CT image into an MRI image.", image=ct)],
           ["real CT (pydicom)", "'converted' to MRI"])

# %% [markdown]
# ## Summary
#
# * Comprehension is scored per question type, modality and language; generation per task,
#   always beside copy-the-input / bicubic and the VQ ceiling.
# * Report→image is judged by what a probe reads off the image, not by pixels.
# * Every widget is a plain function called once directly, so papermill checks it.
#
# ## Check your understanding
#
# 1. Why is "copy the input" a meaningful baseline for CT→MRI, and what does beating it by 0.15
#    SSIM mean?
# 2. Why can no model beat the VQ ceiling, and what would you change to raise it?
# 3. What does the probe's accuracy on *real* X-rays tell you about its verdict on generated ones?
#
# **Exercise:** [exercises/06_metrics](../exercises/README.md): write PSNR, SSIM and the answer
# normalisation yourself.
