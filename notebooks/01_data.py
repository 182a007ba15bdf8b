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
# # 01 · VL-Health-lite: virtual patients, every task, real scans through the same door
#
# **Learning objectives.** After this notebook you can
# 1. explain why a *procedural* data set with known ground truth is the right tool for learning
#    (and what it cannot teach you);
# 2. render one virtual patient as CT, MRI and X-ray at any resolution and say how the three
#    contrasts differ;
# 3. read every task's record in LLaVA format (closed/open questions, reports in English and
#    Chinese, CT↔MRI, super-resolution, reconstruction, report→image);
# 4. check a train/val/test split for patient leakage and compute the baseline any model must beat;
# 5. load real DICOM slices through the same `load_image`, and see bad files rejected clearly.
#
# HealthGPT trains on VL-Health (≈766k comprehension + 783k generation samples, 11 modalities);
# docs/PAPERS.md §4. None of it can be downloaded here, so we make our own, with the same *shape*.

# %% tags=["parameters"]
PROFILE = "cpu"  # cpu: the learning run (reuses `make reproduce` artifacts) | smoke: CI, learns nothing
PRESET = "tiny"
SEED = 0
ARTIFACTS_DIR = None
DATA_DIR = None
OVERRIDES = {}

# %%
from healthgpt_lite.course.notebook import setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
run

# %% [markdown]
# ## A virtual patient
#
# A patient is a small 3-D anatomy of ellipsoids (body, lungs, heart, liver, spleen, spine,
# clavicles) and 0-3 spherical lesions with a known organ, diameter and position. Because it is
# geometry, not pixels, it can be rendered at any resolution, and every question about it has an
# exact answer.

# %%
from healthgpt_lite.data.phantoms import make_patient

patient = make_patient(3, seed=run.cfg.data.seed)
for lesion in patient.lesions:
    print(f"{lesion.organ:>10}: {lesion.diameter_mm:.0f} mm ({lesion.size_class}), patient's {lesion.side} side")

# %% [markdown]
# The same patient in three modalities (rows) and four resolutions (columns). Red circles mark
# the ground-truth lesions. Images follow the radiological convention: the patient's **right**
# is on the image's **left** (the liver is on the left of the picture).

# %%
from healthgpt_lite.viz.plots import patient_gallery

patient_gallery(patient, sizes=(32, 64, 128, 256), mark=True)

# %% [markdown]
# ## Three contrasts of one anatomy
#
# * **CT** and **MRI** are *slices* (the coronal plane y = 0): each tissue gets a grey value.
#   On CT, bone is white and a lesion is darker than the liver; on T2-weighted MRI, bone is dark
#   and lesions are bright, and a smooth *bias field* (coil sensitivity) shades the image.
# * **X-ray** is a *projection*: the line integral of attenuation through the whole body
#   (Beer-Lambert, `1 - exp(-μ·L)`), so organs overlap.
#
# As on real scans, neither slice contrast fixes the other. On non-contrast CT the soft tissues
# (heart, liver, spleen: 40-60 HU) lie within a few grey levels, while T2 MRI tells them apart;
# on T2 MRI air, lung and bone are all dark, while CT tells them apart. So converting one into
# the other takes knowing *which tissue* a pixel belongs to (its shape, its neighbours), and the
# MRI bias field must be invented. How far a per-pixel grey-level table still gets is measured
# below ("The baseline any model must beat"). The table is the contrast of each tissue (grey
# value in a slice, attenuation for the X-ray).

# %%
import pandas as pd

from healthgpt_lite.data.phantoms import ATTENUATION, SLICE_CONTRAST

pd.DataFrame({"CT grey": SLICE_CONTRAST["ct"], "MRI grey": SLICE_CONTRAST["mri"], "X-ray μ": ATTENUATION}).T.round(2)

# %% [markdown]
# A line profile across the lungs makes the contrast difference concrete: the same pixels,
# three very different curves.

# %%
import numpy as np
from matplotlib.figure import Figure

from healthgpt_lite.data.phantoms import MODALITIES, render

fig = Figure(figsize=(7, 2.8))
ax = fig.add_subplot()
row = 96  # a row through both lungs in a 256 px image
for m in MODALITIES:
    ax.plot(render(patient, m, 256)[row], label=m.upper())
ax.set_xlabel("column (px)"), ax.set_ylabel("grey value"), ax.set_title(f"intensity along row {row} of 256")
ax.legend(), ax.grid(alpha=0.3)
fig

# %% [markdown]
# ## The data set: every task from every patient
#
# `ensure_dataset` renders `n_patients` patients (the profile decides how many) and writes
# LLaVA-format JSON per split. It is deterministic: the same config gives the same bytes, and a
# folder made with the same config is reused (*load if present, else make*).

# %%
import collections

from healthgpt_lite.data import ensure_dataset, load_records

data_dir = ensure_dataset(run.data_dir, run.cfg.data, progress=run.progress)
splits = {s: load_records(data_dir / f"{s}.json") for s in ("train", "val", "test")}
pd.DataFrame({s: collections.Counter(r["task"] for r in recs) for s, recs in splits.items()}).fillna(0).astype(int)

# %% [markdown]
# One record of each task. Comprehension records have an `<image>` in the human turn and a
# text answer; generation records also carry a `target_image`, and their answer is the
# placeholder `<target_image>`: once the VQ tokenizer exists (notebook 03), the training
# pipeline replaces it with `<start_index>`, h·w image tokens `<idx_…>` and `<end_index>`
# (HealthGPT-M3: 32×32 = 1024 image tokens; this run's preset and profile: printed below).

# %%
print(f"{run.cfg.preset} / {run.cfg.profile}: {run.cfg.vq.grid_size}×{run.cfg.vq.grid_size} = "
      f"{run.cfg.vq.num_tokens} image tokens per generated image")

# %%
from healthgpt_lite.viz.plots import record_figure

train = splits["train"]
first_of_task = {}
for r in train:
    if r["lang"] == "en":
        first_of_task.setdefault(r["task"], r)
for task in ("vqa_closed", "vqa_open", "report", "ct2mri", "super_resolution", "report2image"):
    display(record_figure(first_of_task[task], data_dir))

# %% [markdown]
# The same patient's questions in Chinese (the side Qilin-Med-VL trains on, notebook 11):

# %%
import json

zh = [r for r in train if r["lang"] == "zh" and r["patient"] == train[0]["patient"]][:4]
for r in zh:
    print(json.dumps(r["conversations"], ensure_ascii=False))

# %% [markdown]
# ## Splits are by patient
#
# The same patient appears in up to 32 records (three modalities, many questions). If one of
# them were in the training set and another in the test set, a model could memorise the
# patient and look better than it is. We split *patients*, and check it:

# %%
patients = {s: {r["patient"] for r in recs} for s, recs in splits.items()}
leaks = {f"{a}&{b}": len(patients[a] & patients[b]) for a, b in [("train", "val"), ("train", "test"), ("val", "test")]}
print("patients per split:", {s: len(p) for s, p in patients.items()}, "| shared patients:", leaks)
assert not any(leaks.values())

# %% [markdown]
# ## The baseline any model must beat
#
# A model that ignores the image and always gives the most common answer to each kind of
# question is the floor. Knowing it is what makes an accuracy meaningful.

# %%
rows = []
for qtype in ("yes_no", "choice", "open_modality", "open_count", "open_location", "open_size"):
    for lang in run.cfg.data.languages:
        pick = lambda recs: [r["conversations"][1]["value"] for r in recs if r.get("question_type") == qtype and r["lang"] == lang]
        test_answers, train_answers = pick(splits["test"]), pick(train)
        if not test_answers or not train_answers:
            continue
        majority = collections.Counter(train_answers).most_common(1)[0][0]
        rows.append({"question type": qtype, "lang": lang, "test questions": len(test_answers),
                     "majority answer (train)": majority,
                     "majority accuracy (test)": round(float(np.mean([a == majority for a in test_answers])), 3)})
pd.DataFrame(rows)

# %% [markdown]
# For image conversion the floor is higher than "copy the input". A **grey-level table** (256
# numbers, fit on the train split: for every CT grey value, the mean MRI grey value at the same
# pixels) is the best any *per-pixel* rule can do. Where one tissue's grey value fixes the
# other's it is nearly the whole task; where it does not, it fails, and a model must use the
# anatomy around the pixel. Both are scored on the **val** split (the test split stays for the
# final numbers, notebook 09):

# %%
from healthgpt_lite.eval.baselines import fit_grey_level_table, task_pairs
from healthgpt_lite.eval.metrics import image_scores, mean_scores

size, rows, tables = run.cfg.data.image_size, [], {}
for task in ("ct2mri", "mri2ct"):
    tables[task] = fit_grey_level_table(data_dir, task, size)
    inputs, targets = task_pairs(data_dir, "val", task, size)
    for name, guess in (("copy the input", inputs), ("grey-level table", tables[task](inputs))):
        rows.append({"task": task, "baseline": name, **mean_scores(image_scores(guess, targets))})
baselines = pd.DataFrame(rows).set_index(["task", "baseline"]).round(3)
baselines

# %%
ssim = baselines["ssim"]
for task in ("ct2mri", "mri2ct"):
    print(f"{task}: the table reaches SSIM {ssim[task, 'grey-level table']:.3f} against "
          f"{ssim[task, 'copy the input']:.3f} for copying; a model must beat both to have learned more "
          "than a per-pixel rule.")

# %% [markdown]
# The tables themselves: where a curve is flat over a range of inputs, those input grey values
# come from tissues that the target modality tells apart, and the table can only give their
# average.

# %%
fig = Figure(figsize=(7, 3))
ax = fig.add_subplot()
levels = np.linspace(0, 1, 256)
for task, label in (("ct2mri", "CT grey -> MRI grey"), ("mri2ct", "MRI grey -> CT grey")):
    ax.plot(levels, tables[task].table.numpy(), label=label)
ax.plot(levels, levels, "k:", lw=0.8, label="identity (copy)")
ax.set_xlabel("input grey value"), ax.set_ylabel("output grey value (mean on train)")
ax.set_title("grey-level tables fit on the train split"), ax.legend(), ax.grid(alpha=0.3)
fig

# %% [markdown]
# And the distribution the answers come from: lesion counts and sizes per patient.

# %%
import json as _json

truth = _json.loads((data_dir / "patients.json").read_text())
fig = Figure(figsize=(8, 2.6))
ax1, ax2 = fig.subplots(1, 2)
counts = collections.Counter(len(p["lesions"]) for p in truth)
ax1.bar(list(counts), list(counts.values())), ax1.set_xlabel("lesions per patient"), ax1.set_ylabel("patients")
ax2.hist([l["diameter_mm"] for p in truth for l in p["lesions"]], bins=20)
ax2.set_xlabel("lesion diameter (mm)"), ax2.set_ylabel("lesions"), fig.tight_layout()
fig

# %% [markdown]
# ## Real scans through the same door
#
# `load_image` reads PNG, JPEG and DICOM from a path, bytes or a PIL image, and returns a
# `(C, H, W)` tensor in [0, 1], padded to square and resized. For DICOM it applies the rescale
# slope/intercept (CT values become Hounsfield units) and the file's display window. Here are
# the CT and MR slices that ship with pydicom, next to our phantoms at the same size.

# %%
from pydicom.data import get_testdata_file

from healthgpt_lite.data import load_image
from healthgpt_lite.viz.plots import show_scans

size = run.cfg.vision.image_size
real_ct = load_image(get_testdata_file("CT_small.dcm"), size=size)
real_mr = load_image(get_testdata_file("MR_small.dcm"), size=size)
phantom_ct = load_image(data_dir / train[0]["image"], size=size)
show_scans([real_ct, real_mr, phantom_ct], ["real CT (pydicom)", "real MR (pydicom)", "phantom CT"])

# %% [markdown]
# Bad input gets a clear `InputError` (a `ValueError`) naming the file and the problem, never a
# deep traceback. A truncated DICOM, a text file, and an empty byte string:

# %%
from healthgpt_lite.errors import InputError

for bad in [get_testdata_file("MR_truncated.dcm"), b"this is not an image", b""]:
    try:
        load_image(bad)
    except InputError as e:
        print("InputError:", str(e).split(" (")[0][-110:])

# %% [markdown]
# ## Text becomes tokens
#
# The tokenizer is a byte-level BPE trained on this corpus (English and Chinese), with Phi-3's
# chat markers and the image-token block `<start_index>`, `<idx_0>`…`<idx_{N-1}>`,
# `<end_index>`. Byte-level means any text round-trips, even words it never saw.

# %%
from healthgpt_lite.data import image_token_ids, load_tokenizer

tok = load_tokenizer()
for text in ["Is there a lesion in the left lung?", "最大的病灶位于哪里？", "<start_index><idx_0><idx_511><end_index>"]:
    ids = tok(text)["input_ids"]
    print(f"{len(ids):2d} tokens: {tok.convert_ids_to_tokens(ids)}")
    assert tok.decode(ids) == text
print(image_token_ids(tok))

# %% [markdown]
# ## Summary
#
# * A virtual patient is geometry with known lesions, rendered as CT/MRI slices and an X-ray
#   projection at any resolution; one patient yields every task's records.
# * Records are LLaVA JSON, the format of VL-Health, VQA-RAD and SLAKE converted; generation
#   targets become VQ tokens later.
# * Splits are by patient; the majority-answer baseline is the floor for every accuracy, copying
#   the input and a per-pixel grey-level table (fit on train) are the floors for CT↔MRI.
# * Real DICOM/PNG/JPEG load through the same function; bad files fail with a clear message.
#
# ## Check your understanding
#
# 1. Heart, liver and spleen have almost the same CT grey value but different MRI grey values.
#    What does the CT→MRI grey-level table do with them, and what must a model use instead?
#
#    <details><summary>Answer</summary>
#
#    Tissue contrasts table; the flat stretches of the table figure.
#
#    </details>
#
# 2. What would go wrong if records were split at random instead of by patient?
#
#    <details><summary>Answer</summary>
#
#    Memorised patients leak into the test set; see "Splits are by patient".
#
#    </details>
#
# 3. What accuracy does "always answer the majority" reach on yes/no questions, and why must you
#    know it before reading a model's accuracy?
#
#    <details><summary>Answer</summary>
#
#    The share of the most common answer, printed by this notebook's majority table (near 0.5
#    for yes/no here). A model's accuracy means something only as a gain over it: 0.6 where
#    "yes" is 60% of the answers is nothing learned.
#
#    </details>
#
# 4. Why is the X-ray not a slice?
#
#    <details><summary>Answer</summary>
#
#    It integrates attenuation along the beam: organs overlap.
#
#    </details>
#
# **Exercises:** the metric exercise (VQA answer normalisation) in [`exercises/`](../exercises/README.md)
# uses these records.
