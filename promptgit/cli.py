"""The `promptgit` command: parse, make one library call, format.

Errors are converted in exactly one place (`_Group.invoke`): a PromptgitError
becomes one red `error: ...` line and exit status 1; Click's usage errors exit
2. The store (and with it pygit2) is imported only inside commands, so
`--help` and start-up stay cheap.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .errors import InvalidInput, PromptgitError
from .names import STAGES

if TYPE_CHECKING:
    from .model import Actor
    from .store import Store
    from .whereabouts import Whereabouts

STAGE = click.Choice(STAGES)


# Each command lives in one of two modules, imported only when it runs (or for --help):
# a read's start-up defines only the reads.
READS = ("list", "show", "versions", "log", "diff", "approvals", "render")
WRITES = ("init", "create", "edit", "new-version", "promote", "rollback", "delete", "deprecate",
          "undeprecate", "review", "approve", "test", "hooks", "gc", "doctor", "serve", "token",
          "webhooks", "demo", "archive", "restore", "rename", "delete-prompt", "mirror")  # fmt: skip
_LAZY = {**dict.fromkeys(READS, "promptgit.cli_reads"), **dict.fromkeys(WRITES, "promptgit.cli_writes")}


class _Group(click.Group):
    """Loads a command's module when it is asked for; maps library errors to one line
    on stderr, so no traceback reaches a user."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_LAZY))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _LAZY:
            import importlib

            importlib.import_module(_LAZY[cmd_name])  # its commands register themselves on `cli`
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PromptgitError as e:
            _fail(ctx, e, _in_cli_words(ctx, e))
        except BrokenPipeError:
            # the reader went away (`promptgit log ... | head`): stop quietly, like git
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except OSError as e:
            where = f" {e.filename}" if e.filename else ""
            _fail(ctx, e, f"{e.strerror or e}{where}: check the path and its permissions")
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # a bug: say so plainly, keep the traceback behind a flag
            _fail(
                ctx,
                e,
                f"unexpected {type(e).__name__}: {e}. This is a bug in promptgit: "
                "rerun with --traceback and report it",
            )


def _in_cli_words(ctx: click.Context, e: PromptgitError) -> str:
    """A library error as this command line says it: the user's own file names (not
    prompt.yaml), and --var for a variable the template needs."""
    from .errors import InvalidContent

    given: dict[str, str] = ctx.find_root().meta.get("promptgit.files", {})
    if isinstance(e, InvalidContent) and e.file in given:
        where = f"{given[e.file]}:{e.line}" if e.line else given[e.file]
        return f"{where}: {e.problem}"
    missing = getattr(e, "missing", None)  # a RenderError
    return f"{e} (pass it with --var {missing}=...)" if missing else str(e)


def _refuse(message: str) -> NoReturn:
    """A refusal the command line itself makes, said like every other error."""
    click.secho(f"error: {message}", fg="red", err=True)
    raise click.exceptions.Exit(1)


def _fail(ctx: click.Context, exc: BaseException, message: str) -> NoReturn:
    if ctx.find_root().params.get("traceback"):
        raise exc
    lines = message.splitlines() or [message]
    click.secho(f"error: {lines[0]}", fg="red", err=True)
    for line in lines[1:]:
        click.secho(f"error: {line}", fg="red", err=True)
    ctx.exit(1)


@click.group(cls=_Group)
@click.option(
    "--store",
    "store_path",
    envvar="PROMPTGIT_STORE",
    default="prompts",
    show_default=True,
    help="The store directory (or set $PROMPTGIT_STORE).",
)
@click.option("--traceback", is_flag=True, hidden=True, help="Show Python tracebacks.")
@click.version_option(package_name="promptgit")
@click.pass_context
def cli(ctx: click.Context, store_path: str, traceback: bool) -> None:
    """promptgit: prompts with release discipline, stored in git.

    Each prompt is a bare git repository in the store; versions (v1.0, v1.1)
    are lines of revisions; the stages dev -> tst -> prod only move forward.
    REF is a stage (dev, tst, prod), a version (v2.3) or a revision sha.
    """
    ctx.obj = store_path


def _store(ctx: click.Context) -> Store:
    from .store import Store

    return Store(ctx.find_root().obj)


def _reader(ctx: click.Context) -> Whereabouts:
    """The store for a command that only reads: the same reads as `Store`'s, without
    loading the writes, the rules or the tests (a read command's start-up stays lean)."""
    from .whereabouts import Whereabouts

    return Whereabouts(ctx.find_root().obj)


def _actor() -> Actor:
    """The author of this command's writes: the user's git identity, with one warning
    when git names no one (git itself would refuse to commit)."""
    from .model import Actor

    actor, guessed = Actor.local()
    meta = click.get_current_context().find_root().meta
    if guessed and not meta.get("promptgit.identity_warned"):
        meta["promptgit.identity_warned"] = True
        click.secho(
            f"warning: git names no author, so promptgit records you as {actor}; set yours with: "
            'git config --global user.name "Your Name" && git config --global user.email you@example.com',
            fg="yellow",
            err=True,
        )
    return actor


def _emit(data: Any) -> None:
    click.echo(_json(data), nl=False)


def _json(data: Any) -> str:
    """One JSON document and its newline: indented for a person at a terminal, compact
    for a program."""
    indent = 2 if sys.stdout.isatty() else None
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    click.echo(_table_text(rows, header), nl=False)


def _table_text(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Rows under a header, in columns as wide as their widest cell; one line each."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in [header, *rows]
    )


def _target(text: str) -> tuple[str, Any]:
    from .names import split_target

    return split_target(text)


MAX_INPUT = 1 << 20  # bytes: the largest prompt.yaml or tests.yaml a revision may hold


def _versioned(target: str, what: str, names_ok: bool = True) -> tuple[str, str]:
    """NAME@VERSION for a command that acts on one version (by number, or by name)."""
    name, ref = _target(target)
    if ref is None or ref.kind not in (("version", "name") if names_ok else ("version",)):
        raise click.UsageError(f"name {what}, e.g. {name}@v1.2")
    return name, ref.value


def _read_text(path: Path | None) -> str:
    """A file's text (or stdin's, for None), read no further than the size limit, so
    `-f /dev/zero` is refused instead of filling memory."""
    where = "stdin" if path is None else str(path)
    if path is None:
        data = sys.stdin.buffer.read(MAX_INPUT + 1)
    else:
        with path.open("rb") as f:
            data = f.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise InvalidInput(f"{where} is over {MAX_INPUT >> 20} MiB, the limit for a prompt file: shorten it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{where} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None


def _read_files(path: str | None, tests: str | None, current: str | None = None) -> dict[str, str]:
    """prompt.yaml (and tests.yaml) from -f FILE, -f DIR, -f - (stdin) or $EDITOR."""
    files: dict[str, str] = {}
    sources: dict[str, str] = {}
    if path == "-":
        files["prompt.yaml"] = _read_text(None)
        sources["prompt.yaml"] = "stdin"
    elif path is not None:
        p = Path(path)
        if p.is_dir():
            for name in ("prompt.yaml", "tests.yaml"):
                if (p / name).is_file():
                    files[name] = _read_text(p / name)
                    sources[name] = str(p / name)
            if not files:
                raise click.UsageError(f"{path} holds neither prompt.yaml nor tests.yaml")
        else:
            files["prompt.yaml"] = _read_text(p)
            sources["prompt.yaml"] = path
    elif current is not None and sys.stdin.isatty():
        edited = click.edit(current, extension=".yaml", require_save=True)
        if edited is None:
            _refuse("nothing saved in the editor; the prompt is unchanged")
        files["prompt.yaml"] = edited
    elif tests is None:
        raise click.UsageError("give the content with -f FILE, -f DIR or -f - (stdin)")
    if tests is not None:
        files["tests.yaml"] = _read_text(Path(tests))
        sources["tests.yaml"] = tests
    # errors about these files then name them as the user did (see _in_cli_words)
    click.get_current_context().find_root().meta["promptgit.files"] = sources
    return files


FILE_HELP = "prompt.yaml to save; a folder holding prompt.yaml/tests.yaml; '-' reads stdin."
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _approvable(target: str) -> tuple[str, Any]:
    name, ref = _target(target)
    if ref is None or ref.kind == "revision":
        raise click.UsageError(f"name a version or a review branch, e.g. {name}@v1.2 or {name}@review/BRANCH")
    return name, ref


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    cli(prog_name="promptgit")
