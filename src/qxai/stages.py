"""The one table of stages: each command's folder, main JSON, other files, report section and claims.

Read by the stage writer (:mod:`qxai.pipeline.stage`: which files a command may write, which folder
another run owns), by the demo (the folder of each stage), by the report (which JSON to read for a
section, where a stage's figures go) and by :func:`qxai.evaluate.claims.collect_claims` (which
stages store claim rows). Nothing else spells a stage's file names.

>>> STAGES["anneal"].main, STAGES["anneal"].section, STAGES["anneal"].claims
('anneal.json', 'annealing', True)
>>> main_json("evaluate")
'metrics.json'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """What one command writes into its output folder (in a demo run, the folder named ``command``).

    ``main``: the main JSON, written last; ``files``: every other file; ``section``: the report
    section its figures go to unless a figure names another (``Figure.section``); ``claims``: its
    main JSON holds ``"claims"``, rows of :class:`qxai.claims.Claim`; ``parts``: the command whose
    run each of its sub-folders holds (each sub-folder's files are that run's, owned by its own
    main JSON; the stage's main JSON names the sub-folders under ``"parts"``).
    """

    command: str
    main: str
    files: tuple[str, ...]
    section: str | None = None
    claims: bool = False
    parts: str | None = None
    optional: bool = False

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.main, *self.files)


#: Every command's files, declared once. :func:`qxai.pipeline.stage.write_stage` refuses an
#: undeclared file, and a test checks that no two single-stage commands share a name (so ``explain``
#: and ``evaluate`` can write into one folder without either overwriting the other). ``demo`` writes
#: the root of a run folder; ``quantum`` is the demo's analysis of its hybrid quantum model; ``planted``
#: is the planted benchmark: one ``evaluate`` run per difficulty in the sub-folder named after it
#: (``planted/easy/metrics.json`` …), the tables, the claims and the figure in ``planted.json``;
#: ``heads`` is QA over a Transformer's attention heads against the head-ablation oracle.
STAGES: dict[str, Stage] = {s.command: s for s in (
    Stage("model", "model.json", ("confusion.png",), "model"),
    Stage("explain", "explanations.json", ("saliency.npz", "qa_grid.png"), "explanations"),
    Stage("evaluate", "metrics.json", (
        "method_saliency.npz", "per_image.npz", "details.json", "metrics.csv", "overlap.png", "curves.png",
        "examples.png", "robustness.png"), "metrics", claims=True),
    Stage("anneal", "anneal.json", (
        "delta_min.png", "gap_vs_classical.png", "fidelity_vs_d.png"), "annealing", claims=True),
    Stage("analyze", "analysis.json", (
        "analysis.npz", "attention.png", "spectra.png", "entropy.png", "similarity.png",
        "mutual_information.png", "integrated_gradients.png", "quantum_entanglement.png", "quantum_mi.png",
        "quantum_separability.png"), "layers", claims=True),
    Stage("planted", "planted.json", ("planted.png",), "planted", claims=True, parts="evaluate"),
    Stage("heads", "heads.json", ("transformer.png",), "transformer", claims=True, optional=True),
    Stage("demo", "stages.json", ("metrics.json", "report.html")),
)}  # fmt: skip

#: Demo folders that hold another command's output under their own name.
FOLDERS: dict[str, str] = {"quantum": "analyze"}


def main_json(folder: str) -> str:
    """The main JSON of a stage folder of a demo run (``quantum`` holds an ``analyze`` run)."""
    return STAGES[FOLDERS.get(folder, folder)].main
