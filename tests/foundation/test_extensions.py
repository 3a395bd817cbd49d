"""Each extension point takes one entry: a toy solver, explainer, data set and metric, registered
here and run through the command line (in-process, so that the registrations are visible)."""

from __future__ import annotations

import json
from pathlib import Path

import dimod
import numpy as np
import pytest
import torch

from qxai.anneal.samplers import SOLVERS, SolverSpec
from qxai.anneal.samplers.exact import ExactEnumerationSampler
from qxai.data.base import ImageDataset
from qxai.data.registry import DATASETS, DatasetSpec
from qxai.explain.base import Explainer, Explanation, normalise_maps
from qxai.explain.registry import EXPLAINERS, ExplainerSpec
from qxai.explain.testing import assert_explainer_contract


def run_cli(*args: str) -> int:
    """``qxai ARGS`` in this process; its exit code."""
    from qxai.cli.main import main

    try:
        main([str(a) for a in args])
    except SystemExit as done:
        return int(done.code or 0)
    return 0


# ---------------------------------------------------------------- the four toys, one entry each


class BruteForce(dimod.Sampler):
    """A toy solver: dimod's ExactSolver, counting the models it is given."""

    calls = 0
    parameters: dict = {}  # noqa: RUF012 (dimod's API)
    properties: dict = {}  # noqa: RUF012

    def sample(self, bqm: dimod.BinaryQuadraticModel, **kw: object) -> dimod.SampleSet:
        BruteForce.calls += 1
        return dimod.ExactSolver().sample(bqm).lowest()


class InputIntensity(Explainer):
    """A toy explainer: the image's own brightness (its channel sum, min–max normalised)."""

    name = "toy"

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        return Explanation(normalise_maps(inputs.sum(dim=1)), targets.numpy(), self.name)


def stripes(count: int = 60) -> ImageDataset:
    """A toy data set: noisy horizontal (class 0) or vertical (class 1) stripes, 16×16."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 0.3, size=(count, 1, 16, 16)).astype(np.float32)
    labels = np.arange(count) % 2
    images[labels == 0, :, ::4, :] += 0.7
    images[labels == 1, :, :, ::4] += 0.7
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), ["horizontal", "vertical"])


@pytest.fixture
def toys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the toys for one test; monkeypatch takes them out again."""
    BruteForce.calls = 0
    monkeypatch.setitem(SOLVERS, "toy", SolverSpec("toy", BruteForce, help="brute force"))
    monkeypatch.setitem(
        EXPLAINERS, "toy", ExplainerSpec("toy", lambda model, layer, seed=0: InputIntensity(model), False)
    )
    monkeypatch.setitem(DATASETS, "stripes", DatasetSpec("stripes", stripes, "horizontal or vertical"))


# ---------------------------------------------------------------- through the command line


def test_toy_solver_through_qxai_explain(toys, digits_checkpoint: Path, tmp_path: Path):
    out = tmp_path / "explain"
    code = run_cli("explain", "--model", digits_checkpoint, "--solver", "toy", "--per-class", 1, "--out", out)
    assert code == 0
    doc = json.loads((out / "explanations.json").read_text())
    records = doc["images"]
    assert BruteForce.calls == sum(r["num_variables"] > 0 for r in records) > 0
    # brute force finds the optimum, which the explainer checks independently by enumeration
    for r in records:
        assert r["solver"] == "toy" and r["energy"] == pytest.approx(r["ground_energy"], abs=1e-9)


def test_toy_explainer_and_metric_through_qxai_evaluate(toys, digits_checkpoint: Path, tmp_path: Path):
    metrics = pytest.importorskip("qxai.evaluate.metrics")
    mean_max = metrics.Metric(
        "toy_peak", "toy", "higher", "the largest saliency value of each map", "image",
        lambda ctx, r: r.saliency.reshape(len(r.saliency), -1).max(axis=1),
    )  # fmt: skip
    metrics.register_metric(mean_max)
    try:
        out = tmp_path / "evaluate"
        code = run_cli(
            "evaluate", "--model", digits_checkpoint, "--methods", "toy,gradcam", "--metrics", "toy_peak",
            "--per-class", 1, "--out", out, "--resamples", 100,
        )  # fmt: skip
    finally:
        metrics.unregister_metric("toy_peak")
    assert code == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["config"]["methods"] == ["toy", "gradcam"]
    # a min–max normalised map of a non-constant image peaks at exactly 1
    assert doc["toy"]["toy_peak"] == 1.0


def test_toy_data_set_through_qxai_train(toys, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "stripes.pt"
    code = run_cli("train", "--dataset", "stripes", "--epochs", 1, "--maps", 4, "--out", out)
    assert code == 0 and out.exists()
    assert "stripes" in capsys.readouterr().out
    from qxai.models import load_checkpoint

    assert load_checkpoint(out).config["dataset"] == "stripes"


def test_unknown_toy_names_get_suggestions_from_the_registries(
    toys, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert run_cli("train", "--dataset", "stripe", "--out", tmp_path / "unused.pt") == 2
    assert "did you mean 'stripes'" in capsys.readouterr().err


def test_the_toy_explainer_keeps_the_contract(toys):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    from qxai.explain.registry import get_explainer

    assert_explainer_contract(get_explainer("toy", model, None), model, torch.rand(3, 1, 4, 4))


def test_the_toy_solver_is_a_dimod_sampler(toys):
    from qxai.anneal.samplers import get_sampler, sample_many

    bqm = dimod.generators.gnp_random_bqm(6, 0.6, "BINARY", random_state=0)
    (ss,) = sample_many(get_sampler("toy"), [bqm], seed=0)
    assert ss.first.energy == pytest.approx(ExactEnumerationSampler().sample(bqm).first.energy)


def test_a_prefixed_data_set_entry_owns_its_prefix(toys, monkeypatch: pytest.MonkeyPatch):
    import qxai.data
    from qxai.data import load_dataset
    from qxai.errors import QxaiError

    seen: list[str] = []

    def from_count(count: str) -> ImageDataset:
        seen.append(count)
        return stripes(int(count))

    monkeypatch.setitem(DATASETS, "stripes-n", DatasetSpec("stripes-n", from_count, argument="COUNT"))
    split = load_dataset("stripes-n:40", seed=0, test_fraction=0.25)
    assert seen == ["40"] and len(split.train) + len(split.test) == 40 and split.test.name == "stripes-n:40"
    assert "stripes-n:COUNT" in qxai.data.DATASET_NAMES  # derived from the registry when read
    for bad in ("stripes-n", "stripes-n:", "stripes:40"):  # the argument is missing, or not taken
        with pytest.raises(QxaiError, match="unknown dataset") as err:
            load_dataset(bad)
        assert "stripes-n:COUNT" in str(err.value)
    with pytest.raises(QxaiError, match="does not take option"):
        load_dataset("stripes", image_size=8)


class Blurred(Explainer):
    """A toy explainer with a budget: the brightness averaged over ``passes`` box blurs."""

    name = "blurred"

    def __init__(self, model: torch.nn.Module, passes: int) -> None:
        super().__init__(model)
        self.passes = passes

    def _explain(self, inputs: torch.Tensor, targets: torch.Tensor) -> Explanation:
        maps = inputs.sum(dim=1, keepdim=True)
        for _ in range(self.passes):
            maps = torch.nn.functional.avg_pool2d(maps, 3, stride=1, padding=1)
        return Explanation(normalise_maps(maps[:, 0]), targets.numpy(), self.name)


def test_an_explainer_with_a_budget_and_a_metric_with_a_setting_are_one_entry_each(
    digits_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Each declares its option with its default in its entry; ``--method-option`` and
    ``--metric-option`` reach them with no other change (no settings field, no CLI flag)."""
    from qxai.evaluate.metrics import METRICS, Metric

    def build(model: torch.nn.Module, layer: str, seed: int = 0, passes: int = 1) -> Blurred:
        return Blurred(model, passes)

    def quantile(ctx, r):
        return np.quantile(r.saliency.reshape(len(r.saliency), -1), ctx.setting("quantile", "q"), axis=1)

    monkeypatch.setitem(EXPLAINERS, "blurred", ExplainerSpec("blurred", build, False, options={"passes": 1}))
    monkeypatch.setitem(METRICS, "quantile", Metric(
        "quantile", "toy", "higher", "the q-quantile of each map's values", "image", quantile,
        settings={"q": 0.5},
    ))  # fmt: skip
    docs = {}
    for name, extra in (("default", []), ("set", ["--method-option", "blurred.passes=3", "--metric-option",
                                                  "quantile.q=0.9"])):  # fmt: skip
        out = tmp_path / name
        code = run_cli("evaluate", "--model", digits_checkpoint, "--methods", "blurred", "--metrics",
                       "quantile", "--per-class", 1, "--out", out, "--resamples", 100, *extra)  # fmt: skip
        assert code == 0
        doc = json.loads((out / "metrics.json").read_text())
        maps = np.load(out / "method_saliency.npz")["blurred"]
        docs[name] = (doc, maps)
    for name, q in (("default", 0.5), ("set", 0.9)):
        doc, maps = docs[name]
        want = np.quantile(maps.reshape(len(maps), -1).astype(np.float64), q, axis=1).mean()
        # maps are float32: the mean of ten values in one order or another differs by a few eps
        assert doc["blurred"]["quantile"] == pytest.approx(want, rel=16 * float(np.finfo(np.float32).eps))
    # three blurs give a different map than one: the budget reached the explainer
    assert not np.allclose(docs["default"][1], docs["set"][1])
    # an undeclared key is refused in one line
    code = run_cli("evaluate", "--model", digits_checkpoint, "--methods", "blurred", "--method-option",
                   "blurred.steps=3", "--out", tmp_path / "bad")  # fmt: skip
    assert code == 2
