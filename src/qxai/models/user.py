"""Models a user brings: ``path.py:ClassName`` (a Python file, run because the user asked for it) or
a TorchScript archive (``.pt``/``.pth`` made with ``torch.jit.save``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from qxai.errors import QxaiError


def load_user_model(spec: str, weights: str | None = None) -> nn.Module:
    """Instantiate the model named by ``spec``; load ``weights`` (a state_dict) safely if given.

    ``spec`` is ``path/to/file.py:ClassName`` (the class is built with no arguments) or the path of a
    TorchScript archive.
    """
    path_text, _, class_name = spec.partition(":")
    path = Path(path_text)
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


def _from_python_file(path: Path, class_name: str) -> nn.Module:
    if not class_name:
        raise QxaiError(f"name the model class: --model-file {path}:ClassName")
    module_name = f"qxai_user_model_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise QxaiError(f"cannot import {path}; is it a Python file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise QxaiError(f"importing {path} failed: {type(err).__name__}: {err}".splitlines()[0]) from None
    cls = getattr(module, class_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise QxaiError(f"{path} has no nn.Module class named '{class_name}'")
    try:
        return cls()
    except TypeError as err:
        raise QxaiError(f"{class_name}() needs arguments ({err}); give it defaults") from None
