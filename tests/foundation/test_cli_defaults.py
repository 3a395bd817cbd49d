"""Every CLI option's default equals the default of the settings field it sets, for every command.

Each command is mapped to the settings dataclasses its options fill (first class holding a field
wins) and a short rename table; an option that sets no field must be listed, with the reason, in
``NOT_SETTINGS``. A new command, a new option or a default restated as a literal that differs
from its field fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
import typer.main

from qxai.analysis.subjects import SubjectSource
from qxai.anneal.physics import AnnealProtocol
from qxai.anneal.physics.study import AnnealSettings
from qxai.anneal.qubo import QuboOptions
from qxai.cli.main import app
from qxai.cli.options import as_text
from qxai.evaluate import EvalSettings
from qxai.models.train import TrainSettings
from qxai.pipeline.analyze import AnalyzeSettings
from qxai.pipeline.anneal import ClusterOptions
from qxai.pipeline.demo import DemoSettings
from qxai.pipeline.evaluate import EvaluateSettings
from qxai.pipeline.explain import ExplainSettings
from qxai.pipeline.shards import StreamSettings
from qxai.settings import field_default

#: command → (its settings classes, option name → field name where they differ)
SOURCES: dict[str, tuple[tuple[type, ...], dict[str, str]]] = {
    "train": ((TrainSettings, DemoSettings), {}),  # what to train defaults to the demo's model
    "explain": ((ExplainSettings, StreamSettings), {}),
    "evaluate": ((EvaluateSettings, EvalSettings, StreamSettings), {"fill": "deletion_fill"}),
    "anneal": ((AnnealSettings, AnnealProtocol, ClusterOptions), {"tau": "taus"}),
    "analyze": ((AnalyzeSettings, SubjectSource), {"model": "checkpoint"}),
    "demo": ((DemoSettings,), {}),
    "report": ((), {}),
}

#: the QUBO options: None = "not given" (the default, or --qubo-from's), see QuboOptions.resolve
QUBO = {"beta", "normalise", "penalty", "dead_eps", "qubo_from"}

#: options that set no settings field, and why
SHARED = {
    "out": "the run folder (or checkpoint), not a setting of the computation",
    "model_file": "lets a checkpoint import the user's code (allow_model_code)",
    "trust_model_code": "lets a checkpoint import the file it names (allow_model_code)",
}
NOT_SETTINGS: dict[str, dict[str, str]] = {
    "train": {
        "qubits": "hybrid-vqc hyper-parameter; None = the architecture's own default",
        "qlayers": "hybrid-vqc hyper-parameter; None = the architecture's own default",
        "image_size": "data-set option; None = the data set's own size",
        "count": "data-set option (cells); None = the data set's own count",
        "difficulty": "data-set option (planted); None = the data set's own default (easy)",
        "download": "data-set option (stl10)",
        "pretrained": "resnet18-reduced starting weights",
        "weights": "resnet18-reduced weights file",
    },
    "explain": {
        "model": "the checkpoint to explain (this or --hf-model)",
        "hf_model": "the Hugging Face folder to explain (this or --model)",
        "num_reads": "solver_options entry; None = the solver's own default",
        "stream": "asks for StreamSettings at all (StreamSettings.from_options)",
    },
    "evaluate": {
        "model": "the checkpoint to evaluate (this or --hf-model)",
        "hf_model": "the Hugging Face folder to evaluate (this or --model)",
        "stream": "asks for StreamSettings at all (StreamSettings.from_options)",
        "method_option": "repeated METHOD.KEY=VALUE; the defaults are each ExplainerSpec.options",
        "metric_option": "repeated METRIC.KEY=VALUE; the defaults are each Metric.settings",
    },
    "anneal": {
        "model": "one of the two problem sources",
        "bqm": "one of the two problem sources",
        "as_json": "output format of the console, not of the run",
    },
    "analyze": {},
    "demo": {},
    "report": {
        "run_dir": "the folder to read",
        "screenshot": "an extra output file",
        "headline": "console output",
        "readme": "an extra output file",
    },
}


def _commands(application: typer.Typer) -> dict[str, Any]:
    return dict(typer.main.get_command(application).commands)  # type: ignore[attr-defined]


def drift(name: str, command: Any) -> list[str]:
    """What is wrong with ``command``'s defaults: one line per option."""
    if name not in SOURCES:
        return [f"command {name} has no entry in SOURCES: map it to its settings classes"]
    classes, renames = SOURCES[name]
    allowed = {**SHARED, **NOT_SETTINGS.get(name, {})}
    problems = []
    for param in command.params:
        option = param.name
        if option in QUBO:
            if param.default is not None:
                problems.append(
                    f"{name} --{option}: default {param.default!r}, want None (QuboOptions.resolve)"
                )
            continue
        field = renames.get(option, option)
        owner = next((c for c in classes if field in {f for f in c.__dataclass_fields__}), None)
        if owner is None:
            if option not in allowed:
                problems.append(f"{name} --{option}: sets no settings field and is not in NOT_SETTINGS")
            continue
        want = as_text(field_default(owner, field))
        if param.default != want:
            problems.append(
                f"{name} --{option}: default {param.default!r}, {owner.__name__}.{field} = {want!r}"
            )
    return problems


@pytest.mark.parametrize("name", sorted(_commands(app)))
def test_every_option_default_is_its_settings_default(name: str) -> None:
    assert drift(name, _commands(app)[name]) == []


def test_every_command_is_covered() -> None:
    assert set(_commands(app)) == set(SOURCES)


def test_qubo_options_not_given_are_the_defaults() -> None:
    assert QuboOptions.resolve() == QuboOptions()
    for name in ("explain", "evaluate", "anneal"):  # every command that builds QUBOs takes the group
        assert {p.name for p in _commands(app)[name].params} >= QUBO, name


def test_the_qubo_help_states_the_field_defaults() -> None:
    params = {p.name: p for p in _commands(app)["explain"].params}
    q = QuboOptions()
    assert f"default {q.beta:g}" in params["beta"].help
    assert f"default {q.normalise}" in params["normalise"].help
    assert f"default {q.dead_eps:g}" in params["dead_eps"].help


def test_the_check_finds_a_restated_default() -> None:
    """The check can fail: a literal that differs from the field, and an unlisted option."""
    toy = typer.Typer()

    @toy.command()
    def train(epochs: int = typer.Option(3), colour: str = typer.Option("red")) -> None:
        """A toy command."""

    @toy.command()
    def other() -> None:
        """A toy command with no entry."""

    problems = drift("train", _commands(toy)["train"])
    assert any("--epochs: default 3" in p for p in problems), problems
    assert any("--colour: sets no settings field" in p for p in problems), problems
    assert drift("other", _commands(toy)["other"])
