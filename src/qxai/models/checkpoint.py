"""Checkpoints: a state_dict plus a JSON config, written atomically, loaded with ``weights_only=True``.

The file is a ``torch.save`` of ``{"format": "qxai-checkpoint", "version": 1, "config": <JSON
text>, "state_dict": {...}}``: only strings, ints and tensors, so loading never unpickles code and a
hostile pickle is refused by torch's safe loader.

Trust rule for model code: a checkpoint of a user's own model records the file's path (relative to
the checkpoint) and SHA-256, and is loaded only with code the user names (:func:`load_checkpoint`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qxai.errors import QxaiError
from qxai.io import atomic_path

FORMAT = "qxai-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded model (in eval mode) and the config it was built and trained with."""

    model: nn.Module
    config: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return list(self.config.get("class_names") or [str(i) for i in range(self.config["num_classes"])])


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, config: dict[str, Any]) -> Path:
    """Write ``model``'s state_dict and the JSON-able ``config`` to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(config, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw payload, checked: our format, complete, and free of arbitrary objects."""
    from qxai.models.user import check_model_path

    path = Path(path)
    if not path.exists():
        raise QxaiError(f"checkpoint {path} does not exist; train one with `qxai train --out {path}`")
    check_model_path(path, "checkpoint")
    _check_looks_like_a_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise QxaiError(
            f"{path} holds objects other than tensors and was refused (nothing was executed); "
            "only load checkpoints written by `qxai train`"
        ) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError… for a cut or foreign file
        detail = (str(err).splitlines() or [type(err).__name__])[0][:80]
        raise QxaiError(f"{path} is not a readable checkpoint ({detail}); it may be truncated") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise QxaiError(f"{path} is not a qxai checkpoint; train one with `qxai train`")
    if payload.get("version") != VERSION:
        raise QxaiError(f"{path} has checkpoint version {payload.get('version')}, this qxai reads {VERSION}")
    return payload


def _check_looks_like_a_checkpoint(path: Path) -> None:
    """A file that is not a torch archive (zip) or pickle stream is named for what it is."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return  # torch's zip format, or the legacy pickle format (weights_only checks the contents)
    if path.suffix == ".py":
        raise QxaiError(f"{path} is Python code, not a checkpoint; pass it as --model {path}:ClassName")
    try:
        text = b"\0" not in head and bool(head.decode("utf-8"))
    except UnicodeDecodeError:
        text = False
    what = "a text file" if text else f"not a PyTorch file (it starts with bytes {head[:4].hex()})"
    raise QxaiError(f"{path} is {what}, not a checkpoint; pass a file written by `qxai train`")


def read_checkpoint_config(path: str | os.PathLike[str], payload: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's config, which must be a JSON object naming an architecture."""
    try:
        config = json.loads(payload["config"])
    except (KeyError, TypeError, ValueError):
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("arch"), str):
        raise QxaiError(
            f"{path}: the config inside is not a JSON object with an 'arch' (damaged or not written by "
            "qxai); train the model again with `qxai train`"
        )
    return config


def load_checkpoint(
    path: str | os.PathLike[str], *, model_file: str | None = None, trust_model_code: bool | None = None
) -> Checkpoint:
    """Rebuild the model a checkpoint describes and load its weights; the model is in eval mode.

    A checkpoint of a user's own model (architecture ``file:REL.py:Class``) never imports code on
    its own: the caller names the code with ``model_file`` (``path.py:Class``, or just ``path.py``),
    or sets ``trust_model_code`` to import the file the checkpoint names (``REL`` is relative to the
    checkpoint's folder). Either way the file's SHA-256 must equal the one recorded at training
    time. Both default to what :func:`allow_model_code` set (the CLI's ``--model-file`` and
    ``--trust-model-code``).

    >>> import tempfile
    >>> from qxai.models.registry import build_model
    >>> net = build_model("reduced-cnn", in_channels=1, num_classes=3, image_size=(8, 8), maps=4)
    >>> cfg = {"arch": "reduced-cnn", "hparams": {"maps": 4}, "in_channels": 1, "num_classes": 3,
    ...        "image_size": [8, 8]}
    >>> p = save_checkpoint(tempfile.mkdtemp() + "/m.pt", net, cfg)
    >>> load_checkpoint(p).config["arch"]
    'reduced-cnn'
    """
    payload = read_checkpoint_payload(path)
    config = read_checkpoint_config(path, payload)
    if config["arch"].startswith("file:"):
        allowed = allowed_model_code()
        spec = resolve_model_code(
            config,
            path,
            model_file=model_file if model_file is not None else allowed.model_file,
            trust=trust_model_code if trust_model_code is not None else allowed.trust,
        )
        from qxai.models.user import load_user_model

        model = load_user_model(spec)
    else:
        model = model_from_config(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as err:
        detail = (str(err).splitlines() or [type(err).__name__])[0][:80]
        raise QxaiError(f"{path}: weights do not fit the '{config.get('arch')}' model ({detail})") from None
    _check_finite_weights(path, model)
    model.eval()
    return Checkpoint(model, config)


def _check_finite_weights(path: str | os.PathLike[str], model: nn.Module) -> None:
    """Refuse weights that are NaN (parameters or buffers) or infinite (parameters; a buffer may
    hold −inf on purpose, e.g. an attention mask): every output would be NaN, silently."""
    bad = [n for n, p in model.named_parameters() if p.is_floating_point() and not torch.isfinite(p).all()]
    bad += [n for n, b in model.named_buffers() if b.is_floating_point() and torch.isnan(b).any()]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise QxaiError(
            f"{path}: weights {shown} are NaN or infinite (training diverged or the file is damaged); "
            "retrain, e.g. with a lower --lr"
        )


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """Build the (untrained) built-in model a checkpoint config describes.

    A user's ``file:`` architecture is refused here: its code is imported only by
    :func:`load_checkpoint` (after the trust check) or when the user names the file for training.
    """
    from qxai.models.registry import build_model

    arch = config.get("arch")
    if isinstance(arch, str) and arch.startswith("file:"):
        raise QxaiError(
            f"the model code {arch[len('file:') :]} is imported only when you name it; "
            "pass --model-file path.py:Class"
        )
    try:
        return build_model(
            config["arch"],
            in_channels=config["in_channels"],
            num_classes=config["num_classes"],
            image_size=config["image_size"],
            **config.get("hparams", {}),
        )
    except KeyError as err:
        raise QxaiError(f"checkpoint config lacks {err}; it was not written by `qxai train`") from None


# ---- the trust rule for model code -------------------------------------------------------------


@dataclass(frozen=True)
class AllowedCode:
    """What the user allowed checkpoints to import: a named model file, or the file the checkpoint names."""

    model_file: str | None = None
    trust: bool = False


_ALLOWED_CODE: ContextVar[AllowedCode | None] = ContextVar("qxai_allowed_model_code", default=None)


def allowed_model_code() -> AllowedCode:
    """The model code this context allows (:func:`allow_model_code`); none outside it."""
    return _ALLOWED_CODE.get() or AllowedCode()


@contextlib.contextmanager
def allow_model_code(model_file: str | None = None, trust: bool = False) -> Iterator[None]:
    """Within the body, checkpoints of user models may import ``model_file`` (``path.py[:Class]``)
    or, with ``trust``, the file they name; the SHA-256 check still applies. The CLI wraps every
    command that loads a model in this, from ``--model-file`` and ``--trust-model-code``.
    """
    token = _ALLOWED_CODE.set(AllowedCode(model_file, trust))
    try:
        yield
    finally:
        _ALLOWED_CODE.reset(token)


def model_code_config(spec: str, checkpoint: str | os.PathLike[str]) -> dict[str, str]:
    """What a checkpoint records of a user's model code ``path.py:Class``: ``{"arch":
    "file:REL:Class", "model_sha256": …}`` with ``REL`` relative to the checkpoint's folder (so the
    two move together between machines).

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "code").mkdir(), (root / "code" / "net.py").write_text("")
    >>> model_code_config(f"{root}/code/net.py:Net", root / "runs" / "m.pt")["arch"]
    'file:../code/net.py:Net'
    """
    from qxai.models.user import code_files, file_sha256, split_model_spec

    path, class_name = split_model_spec(spec)
    folder = Path(checkpoint).resolve().parent
    relative = Path(os.path.relpath(path.resolve(), folder)).as_posix()
    return {
        "arch": f"file:{relative}:{class_name}", "model_sha256": file_sha256(path),
        "model_code": code_files(path),  # the file and the user's modules it imports
    }  # fmt: skip


def resolve_model_code(
    config: dict[str, Any], checkpoint: str | os.PathLike[str], *, model_file: str | None, trust: bool
) -> str:
    """The ``path.py:Class`` to import for a ``file:`` checkpoint, after the trust rule's checks.

    Refuses (one-line :class:`QxaiError`) when the user named no code, when the file is missing,
    and when its SHA-256 differs from the recorded one.
    """
    from qxai.models.user import file_sha256, split_model_spec

    recorded_path, recorded_class = split_model_spec(config["arch"][len("file:") :])
    recorded_sha = config.get("model_sha256")
    named = (Path(checkpoint).parent / recorded_path) if not recorded_path.is_absolute() else recorded_path
    shown = f"{_display(named)}:{recorded_class}"
    if model_file:
        path, class_name = split_model_spec(model_file)
        class_name = class_name or recorded_class
        if path.suffix != ".py":
            raise QxaiError(f"--model-file takes path.py:ClassName, got '{model_file}'")
    elif trust:
        if not recorded_sha:
            raise QxaiError(
                f"{checkpoint} records no SHA-256 of its model code (older qxai); pass --model-file {shown}"
            )
        folder = Path(checkpoint).resolve().parent
        if recorded_path.is_absolute() or folder not in named.resolve().parents:
            # trust imports only code that travels with the checkpoint; anything else must be named
            raise QxaiError(
                f"{checkpoint} names model code outside its own folder ({recorded_path}), which "
                f"--trust-model-code never imports; pass --model-file {shown} to name it yourself"
            )
        path, class_name = named, recorded_class
    else:
        raise QxaiError(
            f"{checkpoint} was trained with the model code {shown}, and qxai never imports code a "
            f"checkpoint names; pass --model-file {shown} (or --trust-model-code to import that file)"
        )
    if not path.is_file():
        raise QxaiError(f"model file {path} does not exist; pass --model-file with the code of {checkpoint}")
    if recorded_sha:
        actual = file_sha256(path)
        if actual != recorded_sha:
            raise QxaiError(
                f"{path} differs from the code {checkpoint} was trained with (SHA-256 {actual[:12]}… "
                f"≠ recorded {recorded_sha[:12]}…); pass the original file or retrain"
            )
    recorded_code = config.get("model_code")
    if isinstance(recorded_code, dict):
        from qxai.models.user import code_files

        actual_code = code_files(path)
        names = set(recorded_code) | set(actual_code)
        changed = sorted(k for k in names if recorded_code.get(k) != actual_code.get(k))
        if changed:
            raise QxaiError(
                f"{', '.join(changed)} (imported by {path.name}) differs from the code {checkpoint} was "
                "trained with (SHA-256); restore the original module or retrain"
            )
    return f"{path}:{class_name}"


def _display(path: Path) -> str:
    """``path`` relative to the working folder when it is below it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
