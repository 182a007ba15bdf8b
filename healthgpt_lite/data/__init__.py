"""VL-Health-lite: virtual patients, task records, image loading and the tokenizer."""
from .generate import ensure_dataset, generate_dataset
from .io import load_image, save_image
from .phantoms import MODALITIES, Patient, make_patient, render
from .records import load_records, patient_records
from .text_tokenizer import image_token_ids, load_tokenizer

__all__ = ["MODALITIES", "Patient", "ensure_dataset", "generate_dataset", "image_token_ids", "load_image",
           "load_records", "load_tokenizer", "make_patient", "patient_records", "render", "save_image"]
