"""One folder, one run: files tied to their run, a lock per folder, clean-up of dead runs only,
and every write error a user can fix as one line (exit 2) with nothing left behind."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qxai.cli.main import main
from qxai.errors import QxaiError
from qxai.io import file_digest
from qxai.pipeline import stage as stage_module
from qxai.pipeline.stage import PARTIAL_PREFIX, STAGES, check_stage_folder, clean_stale, hold, write_stage
from qxai.report import render_report

DEAD_PID = 4_194_305  # above Linux's pid_max limit: never a live process


def run(args: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    return int(stop.value.code or 0), ""


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp") or PARTIAL_PREFIX in p.name)


def test_no_two_commands_share_a_file_name():
    single = [s for s in STAGES.values() if s.command != "demo"]
    names = [name for s in single for name in s.outputs]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_a_stage_writing_an_undeclared_file_is_a_programming_error(tmp_path):
    with pytest.raises(RuntimeError, match="not declared"):
        write_stage(tmp_path, "explanations.json", {}, files={"extra.json": {}})


def test_explain_and_evaluate_share_a_folder_without_overwriting(digits_checkpoint, tmp_path):
    from qxai.evaluate import EvalSettings
    from qxai.pipeline.evaluate import EvaluateSettings, run_evaluate
    from qxai.pipeline.explain import ExplainSettings, run_explain

    out = tmp_path / "both"
    explain_settings = ExplainSettings(dataset="digits", per_class=1)
    explained = run_explain(out, model=digits_checkpoint, settings=explain_settings)
    settings = EvaluateSettings(
        methods=("gradcam",), dataset="digits", per_class=2, metrics=("deletion_auc",),
        scoring=EvalSettings(resamples=100, null_draws=20, steps=4),
    )  # fmt: skip
    evaluated = run_evaluate(out, model=digits_checkpoint, settings=settings)
    for doc in (explained, evaluated):  # every file each main JSON claims is still the one it wrote
        for name in doc["files"]:
            assert file_digest(out / name) == doc["sha256"][name], name
    with np.load(out / "saliency.npz") as maps:
        assert len(maps["saliency"]) == explained["summary"]["images"]


def test_a_folder_owned_by_another_command_is_refused_before_compute(tmp_path):
    (tmp_path / "stages.json").write_text("{}")  # a demo's run root, whose metrics.json holds the claims
    with pytest.raises(QxaiError, match=r"holds a `qxai demo` run that owns metrics\.json"):
        check_stage_folder(tmp_path, "evaluate")
    check_stage_folder(tmp_path, "explain")  # no shared file: allowed


def test_a_kill_during_the_moves_leaves_no_main_json_over_mixed_files(tmp_path, monkeypatch):
    figure_doc = {"summary": {"n": 1}}
    write_stage(tmp_path, "analysis.json", figure_doc, arrays={"analysis.npz": {"x": np.zeros(2)}},
                files={})  # fmt: skip
    real_replace, moved = os.replace, []

    def replace_then_die(src, dst):  # the second move out of the staging folder is killed
        if PARTIAL_PREFIX in str(src) and PARTIAL_PREFIX not in str(dst):
            if moved:
                raise KeyboardInterrupt
            moved.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(stage_module.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_stage(tmp_path, "analysis.json", figure_doc,
                    arrays={"analysis.npz": {"x": np.ones(2)}, "attention.png": {}}, files={})  # fmt: skip
    monkeypatch.setattr(stage_module.os, "replace", real_replace)
    assert not (tmp_path / "analysis.json").exists()  # the old claims went before the first move
    assert leftovers(tmp_path) == []


def test_the_report_refuses_a_figure_another_run_left(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qxai.pipeline.stage import Figure

    stage = tmp_path / "analyze"
    fig, _ = plt.subplots()
    write_stage(stage, "analysis.json", {"summary": {}}, figures=[(Figure("spectra.png", "t", "c"), fig)])
    assert "is not the one" not in render_report(tmp_path)
    (stage / "spectra.png").write_bytes((stage / "spectra.png").read_bytes() + b"\0")  # another run's
    assert "spectra.png is not the one analysis.json recorded" in render_report(tmp_path)


@pytest.mark.parametrize(
    "key, value",
    [("figures", "spectra.png"), ("summary", [1, 2]), ("figures", [{"title": "no file"}]), ("files", {})],
)
def test_report_json_of_the_wrong_shape_is_one_line(tmp_path, capsys, key, value):
    (tmp_path / "analyze").mkdir()
    (tmp_path / "analyze" / "analysis.json").write_text(json.dumps({"summary": {}, key: value}))
    code, _ = run(["report", tmp_path])
    assert code == 2
    err = one_line_error(capsys)
    assert "analysis.json" in err and f"'{key}'" in err and "rerun the stage" in err


def test_stages_of_the_wrong_shape_is_one_line(tmp_path, capsys):
    (tmp_path / "stages.json").write_text(json.dumps({"stages": ["explain"]}))
    assert run(["report", tmp_path])[0] == 2
    assert "'stages'" in one_line_error(capsys)


def test_a_second_run_into_a_held_folder_is_refused_in_one_line(digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "held"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from qxai.pipeline.stage import hold\n"
         "with hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _ = run(["explain", "--model", digits_checkpoint, "--dataset", "digits", "--out", out])
        assert code == 2
        err = one_line_error(capsys)
        assert f"another qxai run (pid {holder.pid}) is writing to {out}" in err
    finally:
        holder.kill()
        holder.wait()
    with hold(out):  # the kernel released the killed holder's lock
        pass


def test_clean_up_removes_only_what_ended_runs_left(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = [
            f"{PARTIAL_PREFIX}{live.pid}-abc", f"{PARTIAL_PREFIX}{DEAD_PID}-abc", f"{PARTIAL_PREFIX}old",
            f".x.json.{live.pid}-0a0b0c0d.tmp", f".x.json.{DEAD_PID}-0a0b0c0d.tmp", ".x.json.0a0b0c0d.tmp",
        ]  # fmt: skip
        for name in names:
            (tmp_path / name).mkdir() if name.startswith(PARTIAL_PREFIX) else (tmp_path / name).touch()
        removed = clean_stale(tmp_path)
        assert sorted(removed) == sorted(n for n in names if str(live.pid) not in n)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n in names if str(live.pid) in n)
    finally:
        live.kill()
        live.wait()


def test_a_dangling_symlink_as_out_is_one_line(digits_checkpoint, tmp_path, capsys):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    code, _ = run(["explain", "--model", digits_checkpoint, "--out", link])
    assert code == 2 and "symbolic link" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("command, name", [("explain", "saliency.npz"), ("evaluate", "metrics.csv")])
def test_a_folder_named_like_an_output_file_is_refused_before_compute(
    digits_checkpoint, tmp_path, capsys, monkeypatch, command, name
):
    out = tmp_path / "run"
    (out / name).mkdir(parents=True)
    monkeypatch.setattr("qxai.models.load_checkpoint", lambda *a, **k: pytest.fail("computed"))
    code, _ = run([command, "--model", digits_checkpoint, "--dataset", "digits", "--out", out])
    assert code == 2 and f"is a folder where {command} writes its file {name}" in one_line_error(capsys)
    assert sorted(p.name for p in out.iterdir()) == [name]


@pytest.mark.parametrize("code_name", ["ENOSPC", "EROFS", "EACCES"])
def test_a_write_error_is_one_line_exit_2_with_no_orphans(digits_checkpoint, tmp_path, capsys, monkeypatch,
                                                          code_name):  # fmt: skip
    import qxai.io as io_module

    number = getattr(errno, code_name)

    def fail(path, *a, **k):
        raise OSError(number, os.strerror(number), str(path))

    monkeypatch.setattr(io_module, "write_figure", fail)
    monkeypatch.setattr(stage_module, "write_figure", fail)
    out = tmp_path / "run"
    code, _ = run(["explain", "--model", digits_checkpoint, "--dataset", "digits", "--per-class", "1",
                   "--out", out])  # fmt: skip
    assert code == 2
    err = one_line_error(capsys)
    assert os.strerror(number) in err and "qa_grid.png" in err and ("--out" in err or "free" in err)
    assert leftovers(out) == [] and not (out / "explanations.json").exists()


def test_a_read_only_run_folder_for_the_report_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "analyze").mkdir()
    (tmp_path / "analyze" / "analysis.json").write_text(json.dumps({"summary": {"n": 1}}))
    import qxai.io as io_module

    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(io_module.tempfile, "TemporaryFile", read_only)
    assert run(["report", tmp_path])[0] == 2
    err = one_line_error(capsys)
    assert "RUN_DIR" in err and "writable" in err and not (tmp_path / "report.html").exists()


def test_the_lock_of_a_refused_run_is_not_left_behind(tmp_path, capsys):
    out = tmp_path / "new" / "deeper"
    code, _ = run(["explain", "--model", tmp_path / "missing.pt", "--out", out])
    assert code == 2
    one_line_error(capsys)
    assert not (tmp_path / "new").exists()


def test_a_read_only_shards_folder_is_refused_before_compute(
    digits_checkpoint, tmp_path, capsys, monkeypatch
):
    import qxai.io as io_module

    out = tmp_path / "run"
    (out / "shards").mkdir(parents=True)
    real = io_module.tempfile.TemporaryFile

    def read_only_shards(*a, dir=None, **k):  # root ignores permission bits: simulate EROFS there
        if dir is not None and Path(dir).name == "shards":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(io_module.tempfile, "TemporaryFile", read_only_shards)
    code, _ = run(["explain", "--model", digits_checkpoint, "--dataset", "digits", "--stream", "--out", out])
    assert code == 2 and "cannot write in" in one_line_error(capsys)


def test_a_full_disk_while_training_is_one_line_and_leaves_no_temporary(tmp_path, capsys, monkeypatch):
    import torch

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / ".m.pt.tmp"))

    monkeypatch.setattr(torch, "save", full)
    code, _ = run(["train", "--dataset", "digits", "--epochs", "1", "--out", tmp_path / "m.pt"])
    assert code == 2 and "No space left on device — free space" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
