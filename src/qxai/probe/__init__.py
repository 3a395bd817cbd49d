"""Looking inside a model: layers by name, and hooks that are always released."""

from qxai.probe.hooks import LayerProbe, capture_gradients
from qxai.probe.layers import layer_names, resolve_layer

__all__ = ["LayerProbe", "capture_gradients", "layer_names", "resolve_layer"]
