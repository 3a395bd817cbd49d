"""A local Hugging Face image classifier (``--hf-model DIR``) as a qxai model.

:func:`load_hf_vision` loads a folder written by ``save_pretrained`` — a
``*ForImageClassification`` model such as ``ViTForImageClassification`` — without the network
(``local_files_only=True``) and from safetensors only (``use_safetensors=True``: a folder holding
only ``pytorch_model.bin``, a pickle, is refused, never unpickled). :class:`HFImageClassifier` wraps
it as an ``nn.Module`` taking images ``(B, C, H, W)`` in ``[0, 1]`` and returning logits ``(B, K)``:

* **preprocessing** from the folder's ``preprocessor_config.json``: ``image_mean``/``image_std``
  (when ``do_normalize``) are applied inside ``forward``, so qxai's images — floats in ``[0, 1]``,
  what the processor's ``rescale_factor = 1/255`` gives — go in as they are and every explainer,
  metric and deletion curve works on the images a user sees. The input size and channels are the
  config's ``image_size``/``num_channels`` (:attr:`HFImageClassifier.input_shape`); a data set of
  another shape is refused (``imagefolder:`` data sets are resized to it). Resizing is the
  user's: qxai does not resample images behind the model's back.
* **token layout**: the wrapper declares ``patch_size`` (the config's) and ``num_prefix_tokens``
  (measured at load: the attention's token count minus the patch grid — 1 for ViT's class token,
  2 for DeiT's class and distillation tokens), which :mod:`qxai.probe.tokens` reads.
* **attention** for ``rollout`` and ``chefer``: the model runs with qxai's own eager attention
  function (registered with ``transformers.AttentionInterface`` as ``"qxai_eager"``; the same
  arithmetic as Hugging Face's ``eager``), which computes the probabilities with an
  ``nn.Softmax`` added to every attention module as its child ``softmax``
  (``hf.vit.layers.i.attention.softmax``): hooks read them ``(B, heads, T, T)``, in the graph, so
  their gradients exist too. A model whose attention does not go through the interface gets no
  such module, and the attention methods say so in one line.

>>> import tempfile, transformers
>>> cfg = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=8,
...     num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, num_labels=3)
>>> folder = tempfile.mkdtemp()
>>> transformers.ViTForImageClassification(cfg).save_pretrained(folder)
>>> net = load_hf_vision(folder)
>>> net(torch.zeros(2, 1, 8, 8)).shape, net.patch_size, net.num_prefix_tokens
(torch.Size([2, 3]), (4, 4), 1)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qxai.errors import QxaiError

#: The name of qxai's attention function in ``transformers.AttentionInterface``.
ATTENTION = "qxai_eager"


def qxai_eager_attention(
    module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Hugging Face's eager attention (``softmax(q kᵀ · scaling + mask) v``), its softmax done by
    ``module.softmax`` (an ``nn.Softmax``, for hooks) when the module has one.

    ``query``/``key``/``value`` ``(B, heads, T, d)`` → output ``(B, T, heads, d)`` and the
    probabilities ``(B, heads, T, T)``.
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[..., : key.shape[-2]]
    softmax = getattr(module, "softmax", None)
    if isinstance(softmax, nn.Softmax):
        probs = softmax(scores.float()).to(query.dtype)
    else:
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if dropout > 0.0 and module.training:
        probs = F.dropout(probs, p=dropout, training=True)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()
    return out, probs


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, qxai_eager_attention)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return int(value[0]), int(value[1])
    return int(value), int(value)


class HFImageClassifier(nn.Module):
    """A Hugging Face image classifier as ``model(images) -> logits`` (see the module docstring).

    Args:
        hf: the ``*ForImageClassification`` model (kept as ``.hf``).
        mean, std: per-channel normalisation applied in ``forward`` (``(x − mean) / std``).

    Attributes:
        input_shape: ``(C, H, W)`` the images it takes.
        patch_size: ``(p, p)``; num_prefix_tokens: leading non-patch tokens.
    """

    def __init__(self, hf: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        config = hf.config
        self.hf = hf
        self.input_shape = (int(config.num_channels), *_pair(config.image_size))
        self.patch_size = _pair(getattr(config, "patch_size", 1))
        self.num_prefix_tokens = 0
        c = self.input_shape[0]
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, c, 1, 1), False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, c, 1, 1), False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or tuple(images.shape[1:]) != self.input_shape:
            raise QxaiError(
                f"the Hugging Face model takes images {self.input_shape}, got {tuple(images.shape)[1:]}; "
                "use a data set of that size and channels (imagefolder: data sets are resized to it)"
            )
        return self.hf(pixel_values=(images - self.mean) / self.std).logits


def preprocessing(folder: str | os.PathLike[str], channels: int) -> tuple[list[float], list[float]]:
    """``(mean, std)`` per channel from ``folder/preprocessor_config.json`` (no normalisation —
    ``[0] * C`` and ``[1] * C`` — without the file or with ``do_normalize: false``).

    A one-value mean/std is broadcast over the channels; any other count than ``C`` is refused.
    """
    file = Path(folder, "preprocessor_config.json")
    none = ([0.0] * channels, [1.0] * channels)
    if not file.is_file():
        return none
    try:
        cfg = json.loads(file.read_text())
    except (OSError, ValueError):
        raise QxaiError(
            f"{file} is not valid JSON; re-save the image processor with save_pretrained"
        ) from None
    if not cfg.get("do_normalize", True) or cfg.get("image_mean") is None:
        return none
    mean, std = cfg.get("image_mean"), cfg.get("image_std", [1.0])
    mean = [float(mean)] if isinstance(mean, int | float) else [float(m) for m in mean]
    std = [float(std)] if isinstance(std, int | float) else [float(s) for s in std]
    mean, std = (v * channels if len(v) == 1 else v for v in (mean, std))
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise QxaiError(
            f"{file}: image_mean {mean} / image_std {std} do not fit {channels} channel(s) "
            "(one value each per channel, std > 0); fix them"
        )
    return mean, std


def _check_folder(folder: Path) -> None:
    """Refuse, in one line, anything but a ``save_pretrained`` folder with safetensors weights."""
    where = f"--hf-model {folder}"
    if not folder.is_dir():
        raise QxaiError(f"{where} is not a folder; give the folder that save_pretrained wrote")
    if not (folder / "config.json").is_file():
        raise QxaiError(f"{where} has no config.json; give the folder that save_pretrained wrote")
    if not any(folder.glob("*.safetensors")):
        if any(folder.glob("pytorch_model*.bin")):
            raise QxaiError(
                f"{where} holds only pytorch_model.bin, a pickle qxai never loads; re-save the model with "
                "save_pretrained(folder, safe_serialization=True)"
            )
        raise QxaiError(f"{where} has no model.safetensors; re-save the model with save_pretrained(folder)")


def _expose_attention(hf: nn.Module) -> int:
    """Add an ``nn.Softmax`` child to every attention module that computes its probabilities
    through the attention interface, switch the model to :data:`ATTENTION`, and run it once to see
    which were called; the others are removed again. Returns the attention's token count ``T``
    (0 when no attention went through the interface)."""
    candidates = [
        m for m in hf.modules()
        if "attention" in type(m).__name__.lower() and hasattr(m, "scaling") and hasattr(m, "config")
        and not hasattr(m, "softmax")
    ]  # fmt: skip
    for m in candidates:
        m.softmax = nn.Softmax(dim=-1)
    _register_attention()
    hf.set_attn_implementation(ATTENTION)
    seen: dict[int, int] = {}

    def count(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        seen[id(module)] = int(output.shape[-1])

    handles = [m.softmax.register_forward_hook(count) for m in candidates]
    c, (h, w) = int(hf.config.num_channels), _pair(hf.config.image_size)
    try:
        with torch.no_grad():
            hf(pixel_values=torch.zeros(1, c, h, w))
    except Exception as err:  # a foreign model may fail in any way
        detail = str(err).splitlines()[0][:100] if str(err) else type(err).__name__
        raise QxaiError(
            f"the Hugging Face model fails on a {c}×{h}×{w} image ({detail}); check its config"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    for m in candidates:
        if id(m.softmax) not in seen:
            del m.softmax
    return max(seen.values(), default=0)


def folder_sha256(path: str | os.PathLike[str]) -> str:
    """One SHA-256 of a model folder's ``config.json``, ``preprocessor_config.json`` and
    ``*.safetensors`` (each file's digest with its name): what a streamed run records of the model."""
    import hashlib

    from qxai.io import file_digest

    folder = Path(path)
    names = ["config.json", "preprocessor_config.json", *sorted(p.name for p in folder.glob("*.safetensors"))]
    digest = hashlib.sha256()
    for name in names:
        if (folder / name).is_file():
            digest.update(f"{name}:{file_digest(folder / name)}\n".encode())
    return digest.hexdigest()


def load_hf_vision(path: str | os.PathLike[str]) -> HFImageClassifier:
    """Load the Hugging Face image classifier saved in the folder ``path`` (never downloads, never
    unpickles), in eval mode; see the module docstring.

    A folder without ``config.json`` or safetensors weights, a model that is not an image
    classifier, or one whose classification head is missing from the weights (it would be random)
    is a one-line :class:`QxaiError`.
    """
    from transformers import AutoModelForImageClassification

    folder = Path(path)
    _check_folder(folder)
    try:
        archs = json.loads((folder / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError):
        raise QxaiError(
            f"{folder / 'config.json'} is not valid JSON; re-save the model with save_pretrained"
        ) from None
    if archs and not any(str(a).endswith("ForImageClassification") for a in archs):
        raise QxaiError(
            f"--hf-model {folder} is a {', '.join(map(str, archs))}, not an image classifier; "
            "give a *ForImageClassification model"
        )
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on the console
    try:
        hf, info = AutoModelForImageClassification.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True, attn_implementation="eager",
            dtype=torch.float32, output_loading_info=True,
        )  # fmt: skip
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:
        detail = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise QxaiError(f"cannot load the model in {folder} ({detail})") from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    if info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        more = " …" if len(missing) > 2 else ""
        raise QxaiError(
            f"--hf-model {folder} lacks weights {missing[:2]}{more} (a classification head would be random); "
            "save a fine-tuned *ForImageClassification model"
        )
    hf.eval()
    tokens = _expose_attention(hf)
    channels = int(hf.config.num_channels)
    model = HFImageClassifier(hf, *preprocessing(folder, channels))
    _, h, w = model.input_shape
    patches = (h // model.patch_size[0]) * (w // model.patch_size[1])
    model.num_prefix_tokens = max(tokens - patches, 0) if tokens else 1
    return model.eval()


__all__ = [
    "ATTENTION",
    "HFImageClassifier",
    "folder_sha256",
    "load_hf_vision",
    "preprocessing",
    "qxai_eager_attention",
]
