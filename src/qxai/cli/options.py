"""The command-line options, each declared once.

A command declares every one of its options in its own signature, where a reader sees it; what it
calls here is either

* :func:`setting` — an option that sets one field of a settings dataclass and takes that field's
  default (so a default cannot differ between the CLI, the API and the docs;
  ``tests/foundation/test_cli_defaults.py`` checks every option of every command), or
* one of the shared groups below — the user-model code options, the QUBO options, the streaming
  options — that several commands take, declared here once with one help text and one meaning.

>>> from qxai.pipeline.explain import ExplainSettings
>>> setting(ExplainSettings, "per_class", help="Images per class.").default
20
"""

from __future__ import annotations

from typing import Any

import typer

from qxai.anneal.qubo import QuboOptions
from qxai.pipeline.shards import StreamSettings
from qxai.settings import field_default


def as_text(value: Any) -> Any:
    """A tuple default as the comma-separated text its option takes (``(10.0, 50.0)`` → ``"10,50"``,
    an empty tuple → None: not given); anything else unchanged.

    >>> as_text((10.0, 50.0)), as_text(("qa", "gradcam")), as_text(()), as_text(3)
    ('10,50', 'qa,gradcam', None, 3)
    """
    if value == ():
        return None
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return value


def setting(cls: type, name: str, *decls: str, help: str | None = None, **kw: Any) -> Any:
    """A typer option whose default is field ``name`` of the settings dataclass ``cls``; a tuple
    field becomes comma-separated text (see :func:`as_text`)."""
    return typer.Option(as_text(field_default(cls, name)), *decls, help=help, **kw)


# --- the layout of a Transformer layer (explain, evaluate): detected unless stated ---------------


def tokens(cls: type) -> Any:
    return setting(
        cls, "tokens", metavar="N",
        help="Leading non-patch tokens at --layer (class, distillation, register tokens); default: detected.",
    )  # fmt: skip


def grid(cls: type) -> Any:
    return setting(
        cls, "grid", metavar="H,W",
        help="Patch grid of the tokens at --layer, e.g. 7,7 (non-square allowed); default: detected.",
    )  # fmt: skip


# --- a checkpoint of the user's own model (every command that loads --model) ---------------------


def model_file() -> Any:
    return typer.Option(
        None, metavar="PATH.py[:CLASS]",
        help="Code of a checkpoint of your own model (its SHA-256 must match the recorded one).",
    )  # fmt: skip


def trust_model_code() -> Any:
    return typer.Option(
        False, help="Import the model file the checkpoint names (SHA-256 checked); else never."
    )


def hf_model() -> Any:
    return typer.Option(
        None, "--hf-model", metavar="DIR",
        help="A local Hugging Face image classifier folder (save_pretrained, safetensors; never downloads) "
        "instead of --model; needs --dataset.",
    )  # fmt: skip


def model_source(model: Any, hf_model: Any) -> str:
    """The model spec of ``--model`` or ``--hf-model`` (``hf:DIR``, see :func:`qxai.models.loading.hf_spec`):
    exactly one of them, else a one-line error.

    >>> model_source(None, "models/vit")
    'hf:models/vit'
    """
    from qxai.errors import QxaiError
    from qxai.models.loading import hf_spec

    if model is not None and hf_model is not None:
        raise QxaiError("give --model or --hf-model, not both")
    if model is None and hf_model is None:
        raise QxaiError("name the model: --model CHECKPOINT (or file.py:Class) or --hf-model DIR")
    return str(model) if model is not None else hf_spec(hf_model)


def dataset() -> Any:
    return typer.Option(None, help="Data set (default: the one the model was trained on).")


# --- the explanation QUBO (explain, evaluate, anneal) ---------------------------------------------
# None means "not given": the default, or --qubo-from's value (QuboOptions.resolve).

_Q = QuboOptions()


def beta() -> Any:
    return typer.Option(
        None, help=f"Importance vs redundancy strength β in [0, 1] (default {_Q.beta:g}, or --qubo-from's)."
    )


def normalise() -> Any:
    return typer.Option(
        None, help=f"α normalisation: max | minmax (default {_Q.normalise}, or --qubo-from's)."
    )


def penalty() -> Any:
    return typer.Option(
        None,
        metavar="λ,k",
        help="Cardinality penalty adding λ(Σx − k)², e.g. 5,3 (default none, or --qubo-from's).",
    )


def dead_eps() -> Any:
    return typer.Option(
        None,
        help=f"Maps with norm ≤ dead_eps · the largest map norm are not variables (default {_Q.dead_eps:g}).",
    )


def qubo_from() -> Any:
    return typer.Option(
        None,
        help="Start from the QUBO settings of an earlier run's explanations.json, metrics.json or "
        "anneal.json.",
    )


# --- streaming through the data set in resumable shards (explain, evaluate) ------------------------


def stream(verb: str) -> Any:
    return typer.Option(
        False, help=f"Stream the data set and {verb} it in resumable shards under OUT/shards."
    )


def limit(verb: str) -> Any:
    return typer.Option(None, help=f"{verb.capitalize()} the first N test images (implies --stream).")


def all_images(verb: str) -> Any:
    return setting(
        StreamSettings,
        "all_images",
        "--all",
        help=f"{verb.capitalize()} every test image (implies --stream).",
    )


def selection() -> Any:
    return setting(
        StreamSettings,
        "selection",
        help="Streamed per-class choice: same (as in memory) | first (stop early).",
    )


def shard_size() -> Any:
    return setting(StreamSettings, "shard_size", help="Images per shard (multiple of --batch-size).")


def loader_workers() -> Any:
    return setting(StreamSettings, "loader_workers", help="Processes decoding images (0: in this process).")


def ray() -> Any:
    return setting(StreamSettings, "ray", "--ray", help="Run on a local Ray runtime (implies --stream).")


def ray_address() -> Any:
    return setting(
        StreamSettings, "ray_address",
        help="Join the Ray cluster at HOST:PORT (implies --stream); see docs/scale.md.",
    )  # fmt: skip


def workers() -> Any:
    return setting(StreamSettings, "workers", help="Ray actors, each loading the model once.")
