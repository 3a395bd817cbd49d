"""Models a user brings: ``path.py:ClassName`` (a Python file, run because the user named it) or a
TorchScript archive (``.pt``/``.pth`` made with ``torch.jit.save``).

A model file may import modules next to it (``from blocks import trunk``): its folder is on the
import path while the file is imported, and only then. TorchScript models have no Python modules
to hook, so layer methods (QA, the CAMs, LRP) do not apply to them; :func:`is_scriptmodule` tells
the explainers which models these are.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.probe import eval_mode


def split_model_spec(spec: str) -> tuple[Path, str]:
    """``"dir/net.py:Net"`` → ``(Path("dir/net.py"), "Net")``; a TorchScript path has no class.

    >>> split_model_spec("models/net.py:Net")
    (PosixPath('models/net.py'), 'Net')
    >>> split_model_spec("net.ts")
    (PosixPath('net.ts'), '')
    """
    if ".py:" in spec:
        path_text, _, class_name = spec.rpartition(":")
        return Path(path_text), class_name
    return Path(spec), ""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, hex: what a checkpoint records of its model code.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.py"
    >>> _ = p.write_bytes(b"")
    >>> file_sha256(p)[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_user_model(spec: str, weights: str | None = None) -> nn.Module:
    """Instantiate the model named by ``spec``; load ``weights`` (a state_dict) safely if given.

    ``spec`` is ``path/to/file.py:ClassName`` (the class is built with no arguments) or the path of a
    TorchScript archive. Only call this with a file the user named: importing it runs its code.
    """
    path, class_name = split_model_spec(spec)
    if not path.is_file():
        raise QxaiError(
            f"model file {path} does not exist; pass --model-file path.py:ClassName or a TorchScript file"
        )
    if path.suffix == ".py":
        model = _from_python_file(path, class_name)
    else:
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except Exception:  # torch raises RuntimeError or ValueError for non-archives
            raise QxaiError(
                f"{path} is not a TorchScript archive; save it with torch.jit.save or pass file.py:ClassName"
            ) from None
    if weights:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as err:  # a hostile or foreign file
            raise QxaiError(
                f"cannot load weights {weights} ({type(err).__name__}); give a plain state_dict"
            ) from None
    return model.eval()


def is_torchscript(path: str | Path) -> bool:
    """True when ``path`` is a TorchScript archive (a zip holding compiled ``code/``)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def is_scriptmodule(model: nn.Module) -> bool:
    """True for a TorchScript model: forward hooks cannot be registered on it, so only the
    input-level methods (Integrated Gradients, SHAP, LIME) explain it.

    >>> net = torch.nn.Linear(2, 2)
    >>> is_scriptmodule(net), is_scriptmodule(torch.jit.script(net))
    (False, True)
    """
    return isinstance(model, torch.jit.ScriptModule)


def check_model_output(
    model: nn.Module, images: torch.Tensor, num_classes: int | None = None, source: str = "the model"
) -> None:
    """Run ``model`` once on ``images`` ``(B, C, H, W)`` (a few are enough) and refuse, with a
    :class:`QxaiError`, a forward that raises or that does not return logits ``(B, num_classes)``.

    Meant for models a user brings, before any expensive work. The caller's train/eval mode is kept.

    >>> check_model_output(torch.nn.Flatten(), torch.zeros(2, 1, 2, 2), num_classes=4)
    >>> check_model_output(torch.nn.Identity(), torch.zeros(2, 1, 2, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    qxai.errors.QxaiError: the model returned shape (2, 1, 2, 2) for a batch of 2 images; ...
    """
    shape = tuple(images.shape)
    try:
        with torch.no_grad(), eval_mode(model):
            out = model(images)
    except QxaiError:
        raise
    except Exception as err:  # the user's code may raise anything
        detail = f"{type(err).__name__}: {err}".splitlines()[0][:120] if str(err) else type(err).__name__
        raise QxaiError(
            f"{source} failed on a batch of shape {shape} ({detail}); fix its forward for inputs (B, C, H, W)"
        ) from None
    if not isinstance(out, torch.Tensor):
        raise QxaiError(
            f"{source} returned {type(out).__name__}, not a tensor; forward must return logits (B, classes)"
        )
    if out.ndim != 2 or out.shape[0] != shape[0]:
        raise QxaiError(
            f"{source} returned shape {tuple(out.shape)} for a batch of {shape[0]} images; "
            "forward must return logits of shape (batch, classes)"
        )
    if num_classes is not None and out.shape[1] != num_classes:
        raise QxaiError(
            f"{source} returns {out.shape[1]} logits per image but the data set has {num_classes} classes; "
            f"make its last layer output {num_classes}"
        )
    if not torch.isfinite(out).all():
        raise QxaiError(f"{source} returned non-finite logits (NaN or inf); check its forward and weights")


def _from_python_file(path: Path, class_name: str) -> nn.Module:
    if not class_name:
        raise QxaiError(f"name the model class: --model-file {path}:ClassName")
    folder = str(path.resolve().parent)
    module_name = f"qxai_user_model_{file_sha256(path)[:16]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise QxaiError(f"cannot import {path}; is it a Python file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # the file's folder is importable while the file runs (``from blocks import trunk``), then removed
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise QxaiError(f"importing {path} failed: {type(err).__name__}: {err}".splitlines()[0]) from None
    finally:
        sys.path.remove(folder)
    cls = getattr(module, class_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise QxaiError(f"{path} has no nn.Module class named '{class_name}'")
    try:
        return cls()
    except TypeError as err:
        raise QxaiError(f"{class_name}() needs arguments ({err}); give it defaults") from None
