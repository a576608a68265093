"""edgecv: take trained vision models to edge devices (bootstrap; filled in below)."""
from ._version import __version__
from .errors import *  # noqa: F401,F403
