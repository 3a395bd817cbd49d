"""A run folder made by hand: every stage's JSON and figures, one stage failed."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


def _png(path: Path, colour: str) -> None:
    import matplotlib.pyplot as plt

    from qxai.io import write_figure

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.bar([0, 1], [1, 2], color=colour)
    write_figure(path, fig, dpi=50)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    from qxai.io import write_json

    run = tmp_path / "run"

    def figs(*names: str) -> list[dict[str, str]]:
        return [{"file": f"{n}.png", "title": n} for n in names]

    info = {
        "bc_mean_offdiag": {"direction": "lower", "definition": "overlap"},
        "deletion_auc": {"direction": "lower", "definition": "deletion"},
    }
    stages = {
        "model": ("model.json", {"summary": {"test accuracy": 0.975}, "figures": figs("confusion")}),
        "explain": ("explanations.json", {"summary": {"images": 200}, "figures": figs("qa_grid")}),
        "evaluate": (
            "metrics.json",
            {
                "qa": {"bc_mean_offdiag": 0.1, "deletion_auc": 0.3},
                "gradcam": {"bc_mean_offdiag": 0.4, "deletion_auc": 0.2},
                "metric_info": info,
                "intervals": {
                    "qa": {"bc_mean_offdiag": [0.05, 0.15], "deletion_auc": [0.1, 0.5]},
                    "gradcam": {"bc_mean_offdiag": [0.3, 0.5], "deletion_auc": [0.1, 0.3]},
                },
                "verdicts": {"bc_mean_offdiag": "qa", "deletion_auc": "tie: gradcam, qa"},
                "claims": [
                    {
                        "claim": "QA's overlap is below GradCAM's",
                        "ours": -0.3,
                        "interval": [-0.4, -0.2],
                        "paper": "arXiv 2604.25649",
                        "verdict": "holds",
                        "why": "interval below 0",
                    }
                ],
                # each figure names the section it belongs in (Figure.section), as the evaluate stage writes
                "figures": [{**figs("overlap_matrices")[0], "section": "disentanglement"},
                            {**figs("example_grid")[0], "section": "explanations"}],
            },
        ),
        "analyze": ("analysis.json", {"summary": {"dense top-5 share": 0.27}, "figures": figs("spectra")}),
    }
    for stage, (name, payload) in stages.items():
        for fig in payload["figures"]:
            _png(run / stage / fig["file"], "tab:blue")
        write_json(run / stage / name, payload)
    meta = {
        "title": "test report", "command": "qxai demo --out run", "versions": {"torch": "x"},
        "stages": {
            "model": {"status": "ok", "seconds": 1.0}, "explain": {"status": "ok", "seconds": 2.0},
            "evaluate": {"status": "ok", "seconds": 3.0},
            "anneal": {"status": "failed", "seconds": 0.5, "error": "QxaiError: statevector exploded"},
            "analyze": {"status": "ok", "seconds": 4.0},
        },
    }  # fmt: skip
    write_json(run / "stages.json", meta)
    return run
