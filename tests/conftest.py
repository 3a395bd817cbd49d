"""Shared fixtures: a tiny trained model, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QXAI_PROGRESS", "0")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reduced-cnn (8 maps) trained for 2 epochs on `digits` (about 2 s); its checkpoint path."""
    from qxai.pipeline.train import run_train, train_config

    out = tmp_path_factory.mktemp("models") / "digits.pt"
    config = train_config("digits", "reduced-cnn", maps=8, epochs=2, seed=0, batch_size=64, lr=2e-3)
    run_train(config, out)
    return out


@pytest.fixture(scope="session")
def digits_vit_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-block vit-tiny (patch 4 on 16×16 digits, dim 32, 2 heads) trained for 4 epochs on
    `digits`; its checkpoint path."""
    from qxai.pipeline.train import run_train, train_config

    out = tmp_path_factory.mktemp("models") / "digits-vit.pt"
    hparams = {"patch_size": 4, "dim": 32, "depth": 2, "heads": 2}
    config = train_config("digits", "vit-tiny", maps=None, epochs=4, seed=0, batch_size=64, lr=3e-3,
                          hparams=hparams)  # fmt: skip
    run_train(config, out)
    return out


@pytest.fixture(scope="session")
def digits_qixai_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A qixai-cnn trained for 2 epochs on `digits`; its checkpoint path."""
    from qxai.pipeline.train import run_train, train_config

    out = tmp_path_factory.mktemp("models") / "digits-qixai.pt"
    config = train_config("digits", "qixai-cnn", maps=None, epochs=2, seed=0, batch_size=64, lr=2e-3)
    run_train(config, out)
    return out


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private QXAI_CACHE for tests that generate cached data."""
    monkeypatch.setenv("QXAI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def local_ray():
    """A private two-CPU Ray runtime for one test module (its own short temp dir, no token auth),
    always shut down."""
    import shutil
    import tempfile

    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        temp = tempfile.mkdtemp(prefix="qxray", dir="/tmp")  # Ray's socket paths must stay short
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def batch_coupled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built-in reduced-cnns whose float results depend on which images share a forward pass.

    MKL's float32 kernels on some AVX-512 CPUs round an image's activations differently depending
    on its batch-mates; on other CPUs (this one, perhaps) they do not, so a test that two routes are
    bit-identical could pass here and fail there. Under this fixture every image's trunk features
    are shifted by 1e-3 × the batch mean, so any two routes that batch images differently give
    different numbers on every CPU: a route that is bit-identical under it puts every image in the
    same batch, by construction.
    """
    from qxai.models.architectures import ReducedCNN

    def forward(self: ReducedCNN, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        h = h + 1e-3 * h.mean(dim=0, keepdim=True)
        return self.classifier(torch.flatten(self.reduce(h), 1))

    monkeypatch.setattr(ReducedCNN, "forward", forward)
