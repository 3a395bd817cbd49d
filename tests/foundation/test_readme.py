"""The README's Python example runs as written, and its two commands exist in the Makefile."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(capsys):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README must carry a Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "test_accuracy" in printed
    assert "(4, 16, 16)" in printed


def test_readme_commands_are_make_targets():
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_user_model_example_runs_as_written(tmp_path):
    """The README's own-model block: a model file with a sibling import, trained, explained with its
    code named again, then saved as TorchScript and evaluated with the input-level methods."""
    import os
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    marker = text.index("<!-- user-model-example")
    block = re.search(r"```bash\n(.*?)```", text[marker:], flags=re.S)
    assert block, "the README's user-model example is missing"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "QXAI_CACHE": str(tmp_path / "cache"), "QXAI_PROGRESS": "0"}  # fmt: skip
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.group(1)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "runs" / "mine-explain" / "explanations.json").is_file()
    doc = (tmp_path / "runs" / "mine-eval" / "metrics.json").read_text()
    assert '"ig"' in doc and '"lime"' in doc
