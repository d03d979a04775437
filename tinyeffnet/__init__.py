"""tinyeffnet: EfficientNetV2 from scratch, every forward and backward pass written by hand.

Layout is channels-last everywhere: activations (N, H, W, C), dense conv weights (KH, KW, Cin, Cout),
depthwise weights (KH, KW, C). The design, layer by layer: docs/DESIGN.md.

``import tinyeffnet`` is light and changes nothing in the process: the ops, the models and numpy
load on first use (``tinyeffnet.ops``, ``tinyeffnet.create_model``), so that
``tinyeffnet.configure_process()`` can still set the thread-pool settings before numpy loads.
"""
import importlib

from .process import configure_process

__version__ = "0.8.2"

# name -> the submodule that defines it, imported on first use (PEP 562 module __getattr__)
_LAZY = {"ops": "tinyeffnet.ops", "create_model": "tinyeffnet.models", "list_models": "tinyeffnet.models"}

__all__ = ["ops", "create_model", "list_models", "configure_process"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'tinyeffnet' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if module.__name__ == f"tinyeffnet.{name}" else getattr(module, name)
    globals()[name] = value
    return value
