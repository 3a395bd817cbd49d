"""Looking inside a model: layers by name, hooks that are always released, eval mode restored, and
the classes to explain."""

from qxai.models.layers import layer_names, resolve_layer
from qxai.models.modes import eval_mode
from qxai.probe.hooks import LayerProbe, capture_gradients
from qxai.probe.targets import Target, target_classes

__all__ = [
    "LayerProbe",
    "Target",
    "capture_gradients",
    "eval_mode",
    "layer_names",
    "resolve_layer",
    "target_classes",
]
