"""The errors every public entry point raises on bad input.

Both are `ValueError`s, so `except ValueError` keeps working, and each message names
*what* was wrong and *where* (the file, the key, the checkpoint) instead of surfacing a
deep traceback from PIL, pydicom or torch.
"""


class HealthGPTLiteError(Exception):
    """Base class of the project's own errors."""


class InputError(HealthGPTLiteError, ValueError):
    """A bad image, question, record, checkpoint or artifact given by the user."""


class ConfigError(HealthGPTLiteError, ValueError):
    """An unknown preset/profile, an unknown or ill-typed override, inconsistent shapes."""
