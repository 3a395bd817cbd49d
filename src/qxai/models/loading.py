"""A model from anything a user names — a qxai checkpoint, ``file.py:ClassName``, a TorchScript
archive or a local Hugging Face image classifier (``--hf-model DIR``, spelled ``hf:DIR`` here) —
with the data set it was trained on and the layer to explain."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from torch import nn

from qxai.data import DatasetSplit, load_dataset
from qxai.data.registry import data_options_for
from qxai.errors import QxaiError
from qxai.models.checkpoint import Checkpoint, load_checkpoint
from qxai.models.layers import resolve_layer
from qxai.models.registry import default_layer

#: The prefix of a model spec naming a Hugging Face image-classification folder: ``hf:DIR``.
HF_PREFIX = "hf:"


def hf_spec(folder: str | os.PathLike[str]) -> str:
    """The model spec of the Hugging Face folder ``folder`` (what ``--hf-model DIR`` passes on).

    >>> hf_spec("models/vit")
    'hf:models/vit'
    """
    return f"{HF_PREFIX}{os.fspath(folder)}"


def is_hf_spec(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names a Hugging Face folder (:func:`hf_spec`)."""
    return isinstance(spec, str) and spec.startswith(HF_PREFIX)


@dataclass
class ModelAndData:
    """A trained model, the layer to explain, and the data split it was trained on."""

    model: nn.Module
    config: dict[str, Any]
    split: DatasetSplit
    layer: str

    @property
    def class_names(self) -> list[str]:
        return self.split.class_names


def load_any_model(
    spec: str, model_file: str | None = None, trust_model_code: bool | None = None
) -> Checkpoint:
    """A qxai checkpoint, a user's ``file.py:ClassName``, a TorchScript archive, or ``hf:DIR`` (a
    local Hugging Face image classifier, :func:`qxai.models.hf_vision.load_hf_vision`; its config
    records ``arch`` ``hf:DIR`` and the ``input_shape`` it takes).

    A checkpoint of a user's model imports its code only from ``model_file`` or, with
    ``trust_model_code``, the file it names, SHA-256 checked (the trust rule, docs/ARCHITECTURE.md).
    """
    from qxai.models.user import check_model_path, is_torchscript, load_user_model

    if is_hf_spec(spec):
        from qxai.models.hf_vision import load_hf_vision

        model = load_hf_vision(spec[len(HF_PREFIX) :])
        return Checkpoint(model, {"arch": spec, "input_shape": list(model.input_shape)})
    if ".py:" not in spec and os.path.lexists(spec):
        check_model_path(spec)  # before anything opens it: a pipe would block, a folder mislead
    if ".py:" in spec or is_torchscript(spec):  # the user named the code itself
        return Checkpoint(load_user_model(spec), {"arch": f"file:{spec}"})
    return load_checkpoint(spec, model_file=model_file, trust_model_code=trust_model_code)


def load_model_and_data(
    checkpoint: str, dataset: str | None = None, layer: str | None = None, *,
    model_file: str | None = None, trust_model_code: bool | None = None,
) -> ModelAndData:  # fmt: skip
    """Load a model and the data set it was trained on (or ``dataset`` when given).

    ``checkpoint`` is a checkpoint written by ``qxai train``, a ``file.py:ClassName`` or a
    TorchScript archive (these two need ``dataset``, and ``layer`` unless their last Conv2d is
    meant). For checkpoints the split is re-drawn with the training seed, so "test" means the
    images the model never saw. A checkpoint of a user's own model needs its code named:
    ``model_file="net.py:Net"`` or ``trust_model_code=True`` (default: the CLI's ``--model-file``
    / ``--trust-model-code``). A user's model is run once on two test images first, so a forward
    that fails or returns anything but logits ``(B, classes)`` is refused before any work.
    """
    ckpt: Checkpoint = load_any_model(str(checkpoint), model_file, trust_model_code)
    cfg = ckpt.config
    name = dataset or cfg.get("dataset")
    if not name:
        raise QxaiError("the model does not record its data set; pass --dataset NAME")
    seed, options = data_options_for(name, cfg)  # the trained-on split, or the recorded input size
    split = load_dataset(name, seed=seed, **options)
    expected = tuple(cfg.get("input_shape") or ())
    if expected and split.test.image_shape != expected:
        raise QxaiError(
            f"data set '{name}' has images {split.test.image_shape}, the model expects {expected}; "
            "use the data set the model was trained on"
        )
    if str(cfg.get("arch", "")).startswith(("file:", HF_PREFIX)):
        from qxai.models.user import check_model_output

        check_model_output(ckpt.model, split.test.images[:2], split.test.num_classes, source=str(checkpoint))
    chosen = layer or default_layer(ckpt.model)
    resolve_layer(ckpt.model, chosen)
    return ModelAndData(ckpt.model, cfg, split, chosen)


__all__ = ["HF_PREFIX", "ModelAndData", "hf_spec", "is_hf_spec", "load_any_model", "load_model_and_data"]
