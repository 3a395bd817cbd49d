"""The ``qxai`` command. Each sub-command lives in its own module with a ``register(app)``.

Every way a command can end is one line on stderr with a fixed exit code:

* a user error — :class:`qxai.errors.QxaiError` or an option value the CLI framework rejects
  (``--per-class 0``, a missing ``--model``) — prints ``error: …`` and exits 2;
* Ctrl-C (SIGINT) prints ``interrupted; rerun the same command to continue`` and exits 130;
* anything unexpected prints ``internal error: …`` (exit 1) unless ``QXAI_DEBUG=1`` asks for the
  traceback.

Options every command shares are checked here, once, while the command line is parsed — before any
data is loaded or any model trained: ``--out`` must be writable (a file for ``train``, a folder for
the others) and ``--seed`` in ``[0, 2**32)``. Every command that loads a model (``--model``)
declares ``--model-file path.py:Class`` and ``--trust-model-code`` (:mod:`qxai.cli.options`), the
two ways to let a checkpoint of a user's own model import its code (see
:func:`qxai.models.checkpoint.load_checkpoint`); they apply here, around the command's body.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from qxai import __version__
from qxai.cli import analyze, anneal, demo, evaluate, explain, report, train
from qxai.errors import QxaiError

try:  # typer ≥ 0.24 carries its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # type: ignore[no-redef]

INTERRUPTED = "interrupted; rerun the same command to continue"

app = typer.Typer(
    name="qxai",
    help="Explain trained neural networks with quantum and quantum-inspired methods, and measure them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (train, explain, evaluate, anneal, analyze, demo, report):
    module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qxai {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """qxai: quantum and quantum-inspired explanations of neural networks."""


def _with_shared_checks(body: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``body`` (a command's function) preceded by the shared checks of ``--out`` and ``--seed``;
    a command that declares ``--trust-model-code`` (see :mod:`qxai.cli.options`) runs inside
    :func:`allow_model_code`, which its ``--model-file`` and ``--trust-model-code`` configure."""
    hints = typing.get_type_hints(body)  # resolved here: typer reads them from the wrapper below
    signature = inspect.signature(body)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
    code_options = "trust_model_code" in signature.parameters

    @functools.wraps(body)
    def command(**kw: Any) -> Any:
        from qxai.io import check_output_file, check_output_folder
        from qxai.models.checkpoint import allow_model_code
        from qxai.models.train import check_seed
        from qxai.pipeline.stage import check_stage_folder, hold

        with contextlib.ExitStack() as held:
            if kw.get("out") is not None:
                out = Path(kw["out"])
                if name == "train":
                    check_output_file(out)
                    held.enter_context(hold(out.parent, lock_name=f".{out.name}.qxai-lock"))
                else:
                    check_output_folder(out)
                    check_stage_folder(out, name)
                    held.enter_context(hold(out))  # one run per folder, from here to the last write
            if kw.get("seed") is not None:
                check_seed(kw["seed"])
            if code_options:
                held.enter_context(allow_model_code(kw["model_file"], kw["trust_model_code"]))
            return body(**kw)

    del command.__wrapped__  # typer must read the resolved signature below, not the body's strings
    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


for _info in app.registered_commands:
    if _info.callback is not None:
        _name = _info.name or _info.callback.__name__.replace("_", "-")
        _info.callback = _with_shared_checks(_info.callback, _name)


def _usage_line(err: UsageError) -> str:
    """A click usage error as one line: the message and where to read the command's help."""
    message = " ".join(err.format_message().split()).rstrip(".")
    where = f"; see `{err.ctx.command_path} --help`" if err.ctx is not None else ""
    return f"error: {message}{where}"


#: errors of the file system a user can fix, and what to do about each
_FIXES = {
    errno.ENOSPC: "free space on that device or choose another --out",
    errno.EDQUOT: "free space within your quota or choose another --out",
    errno.EROFS: "the file system is read-only; choose a writable --out",
    errno.EACCES: "permission denied; change the permissions or choose another --out",
    errno.EPERM: "not permitted; change the permissions or choose another --out",
    errno.EISDIR: "a folder has the name of a file qxai writes; move it away",
    errno.ENOTDIR: "a file stands where qxai needs a folder; move it away",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter --out",
    errno.EMFILE: "too many open files; raise `ulimit -n`",
}


def os_error_line(err: OSError) -> str | None:
    """A file-system error a user can fix as one line naming the file and the fix (None otherwise).

    >>> os_error_line(OSError(errno.ENOSPC, "No space left on device", "/r/x.npz"))
    '/r/x.npz: No space left on device — free space on that device or choose another --out'
    """
    fix = _FIXES.get(err.errno or -1)
    if fix is None:
        return None
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or os.strerror(err.errno or 0)} — {fix}"


def _internal(err: BaseException) -> typing.NoReturn:
    if os.environ.get("QXAI_DEBUG") == "1":
        raise err
    line = f"internal error: {type(err).__name__}: {err}".splitlines()[0]
    typer.echo(f"{line} (QXAI_DEBUG=1 shows the traceback)", err=True)
    sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and ``python -m qxai``."""
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    try:
        # not standalone: usage errors and Ctrl-C come back here and are printed as one line
        code = typer.main.get_command(app).main(args=argv, prog_name="qxai", standalone_mode=False)
    except QxaiError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except NoArgsIsHelpError as err:
        err.show()
        sys.exit(2)
    except UsageError as err:  # BadParameter, missing option, no such command …
        typer.echo(_usage_line(err), err=True)
        sys.exit(2)
    except ClickException as err:
        typer.echo(f"error: {' '.join(err.format_message().split())}", err=True)
        sys.exit(err.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except OSError as err:
        line = os_error_line(err)
        if line is None or os.environ.get("QXAI_DEBUG") == "1":
            _internal(err)
        typer.echo(f"error: {line}", err=True)
        sys.exit(2)
    except Exception as err:  # anything unexpected: one line, unless debugging
        _internal(err)
    # typer turns Ctrl-C into exit code 130; commands themselves return None
    if code == 130:
        typer.echo(INTERRUPTED, err=True)
    sys.exit(code if isinstance(code, int) else 0)
