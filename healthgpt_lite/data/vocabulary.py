"""The words of VL-Health-lite: names, questions and instructions in English and Chinese.

One table per kind of text, read by the record generator (``records.py``), the answer rule
(``facts.py``) and the CLIP-lite captions (``vision/clip_data.py``).
"""
from __future__ import annotations

from .phantoms import LESION_ORGANS, SIZE_CLASSES

MODALITY_NAME = {"en": {"ct": "CT", "mri": "MRI", "xray": "X-ray"}, "zh": {"ct": "CT", "mri": "MRI", "xray": "X光"}}
ORGAN_NAME = {"en": {o: o for o in LESION_ORGANS}, "zh": {"right lung": "右肺", "left lung": "左肺", "liver": "肝脏"}}
SIZE_NAME = {"en": {s: s for s in SIZE_CLASSES}, "zh": {"small": "小", "medium": "中等", "large": "大"}}
YES, NO, NONE = {"en": "Yes", "zh": "是"}, {"en": "No", "zh": "否"}, {"en": "none", "zh": "无"}
COUNT_WORD = {"en": ["No", "One", "Two", "Three"], "zh": ["无", "一", "两", "三"]}
VIEW = {
    "en": {"ct": "Coronal CT of the chest and upper abdomen", "mri": "Coronal T2-weighted MRI of the chest and upper abdomen",
           "xray": "Frontal chest and abdomen radiograph"},
    "zh": {"ct": "胸腹部冠状位CT", "mri": "胸腹部冠状位T2加权MRI", "xray": "胸腹部正位X光片"},
}

QUESTIONS = {
    "en": {
        "any_lesion": "Is there a lesion in this image?",
        "organ_lesion": "Is there a lesion in the {organ}?",
        "is_modality": "Is this a {modality} image?",
        "choice_modality": "Which imaging modality is this? Options: {options}.",
        "choice_count": "How many lesions are visible? Options: {options}.",
        "open_modality": "What imaging modality was used for this image?",
        "open_count": "How many lesions are there?",
        "open_location": "Where is the largest lesion located?",
        "open_size": "How large is the largest lesion?",
        "report": "Write a short radiology report for this image.",
    },
    "zh": {
        "any_lesion": "这张图像中有病灶吗？",
        "organ_lesion": "{organ}有病灶吗？",
        "is_modality": "这是{modality}图像吗？",
        "choice_modality": "这是哪种成像方式？选项：{options}。",
        "choice_count": "图中可见几个病灶？选项：{options}。",
        "open_modality": "这张图像使用了哪种成像方式？",
        "open_count": "图中有几个病灶？",
        "open_location": "最大的病灶位于哪里？",
        "open_size": "最大的病灶有多大？",
        "report": "请为这张图像写一份简短的影像报告。",
    },
}
INSTRUCTIONS = {
    "ct2mri": ["Convert this CT image into an MRI image.", "Synthesize the MRI image that corresponds to this CT."],
    "mri2ct": ["Convert this MRI image into a CT image.", "Synthesize the CT image that corresponds to this MRI."],
    "super_resolution": ["Increase the resolution of this {modality} image by a factor of {factor}.",
                         "Reconstruct a {factor}x higher-resolution version of this {modality} image."],
    "reconstruction": ["Reconstruct this image.", "Reproduce this {modality} image."],
    "report2image": ["Generate an X-ray image that matches this report: {report}",
                     "Draw the radiograph described in this report: {report}"],
}
