"""analyze() runs the quantum-layer analysis when the model has quantum layers (and only then)."""

from __future__ import annotations

import pytest
import torch

hybrid = pytest.importorskip("qxai.models.hybrid")
pytest.importorskip("qxai.analysis.quantum")


def test_quantum_layers_are_analysed_and_their_figures_added() -> None:
    from qxai.analysis.subjects import Subject
    from qxai.pipeline.analyze import AnalyzeSettings, analyze

    torch.manual_seed(0)
    net = hybrid.HybridVQC(1, 2, (8, 8), qubits=3, qlayers=2)
    names = [n for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    x, y = torch.rand(24, 1, 8, 8), torch.arange(24) % 2
    subject = Subject(net, x, y, ["a", "b"], names[:2], "image")
    settings = AnalyzeSettings(samples=24, analyses=("spectrum",), bootstrap=0)
    ctx = analyze(subject, settings)
    assert "quantum" in ctx.doc and ctx.doc["quantum"]["layers"]
    assert any(fig.section == "quantum" for fig, _ in ctx.figures)
    plain = analyze(subject, AnalyzeSettings(samples=24, analyses=("spectrum",), bootstrap=0, quantum=False))
    assert "quantum" not in plain.doc
