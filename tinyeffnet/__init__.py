"""tinyeffnet: EfficientNetV2 from scratch, every forward and backward pass written by hand.

Layout is channels-last everywhere: activations (N, H, W, C), dense conv weights (KH, KW, Cin, Cout),
depthwise weights (KH, KW, C). The design, layer by layer: docs/DESIGN.md.
"""
from . import _env  # noqa: F401  (must run before numba is imported anywhere)

__version__ = "0.3.0"

from . import ops  # noqa: E402,F401
from .models import create_model, list_models  # noqa: E402,F401

__all__ = ["ops", "create_model", "list_models"]
