"""Looking inside a model: layers by name, hooks that are always released, eval mode restored, the
classes to explain, and a layer's output read as feature maps whatever its layout (tokens)."""

from qxai.models.layers import layer_names, resolve_layer
from qxai.models.modes import eval_mode
from qxai.probe.hooks import LayerProbe, capture_gradients, edited_maps, read_layout
from qxai.probe.targets import Target, target_classes

__all__ = [
    "LayerProbe",
    "Target",
    "capture_gradients",
    "edited_maps",
    "eval_mode",
    "layer_names",
    "read_layout",
    "resolve_layer",
    "target_classes",
]
