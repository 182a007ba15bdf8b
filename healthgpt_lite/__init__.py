"""healthgpt_lite: HealthGPT (medical comprehension + generation in one LLM) built, trained and
measured piece by piece, from a 2-core CPU to GPU clusters. See README.md and notebooks/."""
from .config import Config, build_config
from .errors import ConfigError, InputError

__version__ = "0.1.0"
__all__ = ["Config", "ConfigError", "InputError", "build_config"]
