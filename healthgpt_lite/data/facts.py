"""What a question about an image asks, and the answer the facts of that image give it.

Every comprehension question of VL-Health-lite is about a few facts of one image: its
modality, how many lesions it shows, which organs have one, and the organ and size class of
the largest. ``answer_from_facts`` is the one rule that turns facts into the reference answer:
the data generator applies it to the ground truth (``records.py``), and the "what the pixels
allow" reference of the evaluation (``eval/pixel_reference.py``) applies it to facts a small CNN
reads off the image, so both answer in exactly the same words.

    >>> facts = ImageFacts("ct", 2, frozenset({"liver"}), ("liver", "large"))
    >>> answer_from_facts(facts, "open_location", "Where is the largest lesion located?", "en")
    'liver'
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .phantoms import Patient
from .vocabulary import MODALITY_NAME, NONE, NO, ORGAN_NAME, QUESTIONS, SIZE_NAME, YES


@dataclass(frozen=True)
class ImageFacts:
    modality: str  # "ct" | "mri" | "xray"
    count: int  # lesions, 0-3
    organs: frozenset[str]  # organs with at least one lesion (LESION_ORGANS)
    largest: tuple[str, str] | None  # (organ, size class) of the largest lesion; None without lesions


def facts_of(p: Patient, modality: str) -> ImageFacts:
    """The ground truth of one rendered image of patient ``p``."""
    big = max(p.lesions, key=lambda l: l.diameter_mm) if p.lesions else None
    return ImageFacts(modality, len(p.lesions), frozenset(l.organ for l in p.lesions),
                      (big.organ, big.size_class) if big else None)


def _asked(template: str, question: str, names: dict[str, str]) -> str | None:
    """Which key of ``names`` fills the ``{}`` slot of ``template`` to give ``question``."""
    slot = template[template.index("{"):template.index("}") + 1]
    return next((key for key, name in names.items() if template.replace(slot, name) == question), None)


def answer_from_facts(facts: ImageFacts, question_type: str, question: str, lang: str) -> str:
    """The reference answer to ``question`` (of ``question_type``, in ``lang``) given ``facts``."""
    q, yes_no = QUESTIONS[lang], lambda b: (YES if b else NO)[lang]  # noqa: E731
    question = question.replace("<image>", "").strip()
    if question_type == "yes_no":
        if question == q["any_lesion"]:
            return yes_no(facts.count > 0)
        organ = _asked(q["organ_lesion"], question, ORGAN_NAME[lang])
        if organ is not None:
            return yes_no(organ in facts.organs)
        modality = _asked(q["is_modality"], question, MODALITY_NAME[lang])
        if modality is not None:
            return yes_no(modality == facts.modality)
    elif question_type in ("choice", "open_modality", "open_count"):
        if question_type == "open_count" or question.startswith(q["choice_count"].split("{")[0]):
            return str(facts.count)
        return MODALITY_NAME[lang][facts.modality]
    elif question_type == "open_location":
        return ORGAN_NAME[lang][facts.largest[0]] if facts.largest else NONE[lang]
    elif question_type == "open_size":
        return SIZE_NAME[lang][facts.largest[1]] if facts.largest else NONE[lang]
    raise InputError(f"not a VL-Health-lite question of type {question_type!r} in {lang!r}: {question!r}")


