"""Hooks owned by context managers: registered on entry, released on every exit path.

:class:`LayerProbe` records what named layers output during a forward pass (and, when asked, keeps
the graph so that gradients with respect to those outputs can be taken). :func:`capture_gradients`
is the one forward + one backward pass that Grad-CAM style methods need for a whole batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

import torch

from qxai.errors import QxaiError
from qxai.models.layers import resolve_layer
from qxai.probe.targets import Target, target_classes
from qxai.probe.tokens import TokenLayout, layer_layout, layer_maps


def _first_tensor(output: object) -> torch.Tensor | None:
    """The tensor a layer produced: itself, or the first tensor of a tuple (RNNs, attention)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state  # type: ignore[no-any-return]
    return None


def refuse_torchscript(model: torch.nn.Module) -> None:
    """A TorchScript model has no hooks: say so in one line instead of torch's RuntimeError."""
    if isinstance(model, torch.jit.ScriptModule):
        raise QxaiError(
            "a TorchScript model has no layer hooks, so layer methods (qa, the CAMs, layer analyses) "
            "cannot read its layers; pass the model's Python class (--model-file path.py:Class), or "
            "use the input-level methods ig, shap, lime"
        )


class LayerProbe:
    """Record the outputs of named layers while the context is open.

    Args:
        model: any ``torch.nn.Module``.
        layers: layer names (``named_modules()``), or one name.
        detach: store detached copies (analysis) instead of graph-attached tensors (gradients).

    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    >>> with LayerProbe(net, ["0"]) as probe:
    ...     _ = net(torch.ones(4, 3))
    >>> probe.outputs["0"].shape
    torch.Size([4, 2])
    >>> len(net[0]._forward_hooks)
    0
    """

    def __init__(self, model: torch.nn.Module, layers: str | Sequence[str], *, detach: bool = True) -> None:
        refuse_torchscript(model)
        self.model = model
        self.names = [layers] if isinstance(layers, str) else list(layers)
        self.modules = {name: resolve_layer(model, name) for name in self.names}
        self.detach = detach
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> LayerProbe:
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._recorder(name)))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()

    def remove(self) -> None:
        """Release every hook (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _recorder(self, name: str):
        def hook(module: torch.nn.Module, args: object, output: object) -> None:
            tensor = _first_tensor(output)
            if tensor is None:
                return
            self.outputs[name] = tensor.detach() if self.detach else tensor

        return hook

    def output(self, name: str) -> torch.Tensor:
        """The recorded output of ``name``; a clear error when the layer did not run."""
        if name not in self.outputs:
            raise QxaiError(
                f"layer '{name}' produced no tensor output for this input; choose a layer on the forward path"
            )
        return self.outputs[name]


def capture_gradients(
    model: torch.nn.Module, layer: str, inputs: torch.Tensor, targets: Target = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward and one backward pass for the whole batch.

    Returns ``(logits (B, K), activations (B, N, h, w), gradients (B, N, h, w), targets (B,))``,
    where the gradients are ``∂ z_{target_b} / ∂ A_b`` of the pre-softmax logit with respect to the
    layer's output. The output is read as feature maps whatever its layout
    (:func:`qxai.probe.tokens.layer_maps`: a convolution's maps as they are, a Transformer's patch
    tokens as a grid of ``N`` token channels, a channels-last stage permuted), and the gradient
    through the same transform, so every map method sees ``N × h × w`` maps. ``targets`` is
    resolved by :func:`qxai.probe.target_classes` from this same forward pass (None: the predicted
    classes, with no second pass; an int; or one class per example). Because images in a batch do
    not interact in eval mode, summing the selected logits gives each image its own gradient in
    one backward pass.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.Flatten(), torch.nn.Linear(8, 2)).eval()
    >>> logits, acts, grads, targets = capture_gradients(net, "0", torch.ones(4, 1, 2, 2))
    >>> grads.shape, bool((grads.flatten(1) == net[2].weight[targets]).all())
    (torch.Size([4, 2, 2, 2]), True)
    """
    with LayerProbe(model, layer, detach=False) as probe, torch.enable_grad():
        logits = model(inputs.detach())
        activations = probe.output(layer)
        to_maps = layer_maps(model, layer, inputs)
        maps = to_maps(activations)  # the layout is checked before any gradient is spent
        if not activations.requires_grad:
            raise QxaiError(
                f"layer '{layer}' output does not depend on trainable parameters; pick another layer"
            )
        chosen = target_classes(targets, len(inputs), logits.detach()).to(logits.device)
        (gradients,) = torch.autograd.grad(logits.gather(1, chosen.view(-1, 1)).sum(), activations)
    return logits.detach(), maps.detach(), to_maps(gradients).detach(), chosen


def read_layout(model: torch.nn.Module, layer: str, inputs: torch.Tensor) -> TokenLayout:
    """The layout of ``layer``'s output on ``inputs`` ``(B, C, H, W)`` (one forward pass, no gradient):
    how the map methods read it (:mod:`qxai.probe.tokens`); a layout that cannot be read is the
    one-line :class:`QxaiError` they would raise, here before any other work.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1))
    >>> read_layout(net, "0", torch.zeros(2, 1, 5, 5)).describe()
    '3 feature maps of 5×5'
    """
    from qxai.models.modes import eval_mode

    with eval_mode(model), torch.no_grad(), LayerProbe(model, layer) as probe:
        model(inputs)
        return layer_layout(model, layer, probe.output(layer), inputs)


@contextlib.contextmanager
def edited_maps(
    model: torch.nn.Module, layer: str, inputs: torch.Tensor, edit: Callable[[torch.Tensor], torch.Tensor]
) -> Iterator[None]:
    """Within the block, ``layer``'s output, read as maps ``A`` ``(B, N, h, w)`` whatever its layout,
    is replaced by ``edit(A)`` — ``(B', N, h, w)``, ``B'`` may differ, e.g. one masked copy per
    subset — written back in the layer's own layout (a Transformer's leading tokens kept as they
    were, broadcast over ``B'``): the one way an intervention on a layer's maps (ablation, masking,
    a baseline) reaches a convolution and a Transformer alike. ``inputs`` ``(B, C, H, W)`` are the
    images the forward pass runs on (their size fixes the patch grid). The hook is released on exit.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.Flatten(), torch.nn.Linear(8, 1))
    >>> x = torch.rand(1, 1, 2, 2)
    >>> keep = torch.tensor([0.0, 1, 1]).view(3, 1, 1, 1)  # copy 0: every map removed
    >>> with edited_maps(net, "0", x, lambda a: a.expand(3, -1, -1, -1) * keep):
    ...     out = net(x)
    >>> out.shape, bool(out[0] == net[2].bias), len(net[0]._forward_hooks)
    (torch.Size([3, 1]), True, 0)
    """
    refuse_torchscript(model)
    module = resolve_layer(model, layer)
    to_maps = layer_maps(model, layer, inputs)

    def hook(_module: torch.nn.Module, _args: object, output: object) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise QxaiError(
                f"layer '{layer}' outputs {type(output).__name__}, not a tensor; pick another layer"
            )
        edited = edit(to_maps(output))
        assert to_maps.layout is not None
        return to_maps.layout.from_maps(edited, output)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
