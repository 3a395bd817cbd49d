"""Models a user brings: ``path.py:ClassName`` (a Python file, run because the user named it) or a
TorchScript archive (``.pt``/``.pth`` made with ``torch.jit.save``).

A model file may import modules next to it (``from blocks import trunk``): its folder is on the
import path while the file is imported, and only then. TorchScript models have no Python modules
to hook, so layer methods (QA, the CAMs, LRP) do not apply to them; :func:`is_scriptmodule` tells
the explainers which models these are.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.io import file_digest
from qxai.models.modes import eval_mode


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
    return file_digest(path)


def code_files(path: str | os.PathLike[str]) -> dict[str, str]:
    r"""The model file and every module of the user's own it imports, ``{relative path: SHA-256}``.

    Follows ``import x`` / ``from x import y`` / ``from . import y`` (anywhere in the file, function
    bodies included) to ``.py`` files under the model file's folder, recursively; installed
    packages are not the user's code and are left out. What ``--trust-model-code`` checks: a
    sibling module edited after training is as much a change of the model as an edit of the file.

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "net.py").write_text("import torch\nfrom blocks import trunk\n")
    >>> _ = (root / "blocks.py").write_text("def trunk(): pass\n")
    >>> sorted(code_files(root / "net.py"))
    ['blocks.py', 'net.py']
    """
    import ast

    main = Path(path).resolve()
    root = main.parent
    found: dict[str, str] = {}
    todo = [main]
    while todo:
        file = todo.pop()
        rel = file.relative_to(root).as_posix()
        if rel in found:
            continue
        found[rel] = file_sha256(file)
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except (SyntaxError, ValueError):
            continue  # importing it will report the error
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [(root, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = root if node.level == 0 else file.parents[min(node.level, len(file.parents)) - 1]
                stem = node.module or ""
                names = [(base, stem)] + [(base, f"{stem}.{a.name}" if stem else a.name) for a in node.names]
            else:
                continue
            for base, dotted in names:
                todo.extend(_module_files(root, base, dotted))
    return dict(sorted(found.items()))


def _module_files(root: Path, base: Path, dotted: str) -> list[Path]:
    """The ``.py`` files under ``root`` that importing ``dotted`` from ``base`` runs."""
    parts = [p for p in dotted.split(".") if p]
    out: list[Path] = []
    for depth in range(1, len(parts) + 1):
        stem = base.joinpath(*parts[:depth])
        for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
            if candidate.is_file() and root in candidate.resolve().parents:
                out.append(candidate.resolve())
    return out


def load_user_model(spec: str, weights: str | None = None) -> nn.Module:
    """Instantiate the model named by ``spec``; load ``weights`` (a state_dict) safely if given.

    ``spec`` is ``path/to/file.py:ClassName`` (the class is built with no arguments) or the path of a
    TorchScript archive. Only call this with a file the user named: importing it runs its code.
    """
    path, class_name = split_model_spec(spec)
    if not path.exists():
        raise QxaiError(
            f"model file {path} does not exist; pass --model-file path.py:ClassName or a TorchScript file"
        )
    check_model_path(path, "model file")
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


def check_model_path(path: str | os.PathLike[str], option: str = "--model") -> Path:
    """Refuse, without opening it, a model path that is not a readable regular file (one line each).

    A folder, a pipe (reading one would wait forever), a device such as ``/dev/null`` and an empty
    file each get their own message; a missing file says how to make one.

    >>> check_model_path("/dev/null")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    qxai.errors.QxaiError: --model /dev/null is not a regular file (a device); pass a checkpoint ...
    """
    import stat

    p = Path(path)
    try:
        info = p.stat()
    except FileNotFoundError:
        raise QxaiError(
            f"{option} {p} does not exist; train a checkpoint with `qxai train --out {p}` or pass "
            "path.py:ClassName"
        ) from None
    except OSError as err:
        raise QxaiError(f"{option} {p} cannot be read ({err.strerror}); check its permissions") from None
    fix = "pass a checkpoint written by `qxai train` or path.py:ClassName"
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise QxaiError(f"{option} {p} is a folder; {fix}")
    if not stat.S_ISREG(mode):
        kind = "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise QxaiError(f"{option} {p} is not a regular file ({kind}); {fix}")
    if info.st_size == 0:
        raise QxaiError(f"{option} {p} is empty (0 bytes); {fix}")
    return p


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
    before = set(sys.modules)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise QxaiError(f"importing {path} failed: {type(err).__name__}: {err}".splitlines()[0]) from None
    finally:
        sys.path.remove(folder)
        # the user's own modules are not cached: another model file's ``blocks.py`` (or this one's,
        # edited and re-hashed) must be imported afresh, not served from sys.modules
        for name in set(sys.modules) - before - {module_name}:
            file = getattr(sys.modules[name], "__file__", None)
            if file and Path(folder) in Path(file).resolve().parents:
                sys.modules.pop(name, None)
    cls = getattr(module, class_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise QxaiError(f"{path} has no nn.Module class named '{class_name}'")
    try:
        return cls()
    except TypeError as err:
        raise QxaiError(f"{class_name}() needs arguments ({err}); give it defaults") from None
