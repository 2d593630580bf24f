"""Every other command (the writes, the server, tokens, hooks, webhooks, health,
mirrors), loaded by cli.py when one of them runs."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from .cli import (
    FILE_HELP,
    STAGE,
    _actor,
    _approvable,
    _emit,
    _fail,
    _read_files,
    _refuse,
    _store,
    _table,
    _target,
    _versioned,
    cli,
    json_option,
)
from .names import PROMOTION_STAGES, ROLES

if TYPE_CHECKING:
    pass


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the store directory and its promptgit.yaml (safe to repeat)."""
    from .store import Store

    store = Store.init(ctx.find_root().obj)
    click.echo(f"store ready at {store.path}")


@cli.command()
@click.argument("name")
@click.option("-f", "--file", "path", required=True, help=FILE_HELP)
@click.option("--tests", type=click.Path(dir_okay=False), help="tests.yaml to save with it.")
@click.option("-m", "--message", default="", help="Change summary (default: 'Create v1.0').")
@click.option("--name", "label", metavar="TEXT", help="Name v1.0 (default: its creation time, UTC).")
@click.option("--description", default="", metavar="TEXT", help="What v1.0 is for (fixed once created).")
@json_option
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    path: str,
    tests: str | None,
    message: str,
    label: str | None,
    description: str,
    as_json: bool,
) -> None:
    """Create prompt NAME: v1.0, a DEV draft served by dev."""
    info = _store(ctx).create(
        name, _read_files(path, tests), message, version_name=label, description=description, actor=_actor()
    )
    if as_json:
        _emit(info.to_json())
    else:
        click.echo(f"created {name}@{info.version} {info.name!r} ({info.revision[:10]}), served by dev")


@cli.command()
@click.argument("target", metavar="NAME[@VERSION]")
@click.option("-f", "--file", "path", help=FILE_HELP + " Default: open $EDITOR.")
@click.option("--tests", type=click.Path(dir_okay=False), help="tests.yaml to save with it.")
@click.option("-m", "--message", default="", help="Change summary of this revision.")
@click.option("--expect", metavar="REV", help="The revision you edited; refuse if the draft moved.")
@json_option
@click.pass_context
def edit(
    ctx: click.Context,
    target: str,
    path: str | None,
    tests: str | None,
    message: str,
    expect: str | None,
    as_json: bool,
) -> None:
    """Save a new revision of a draft (DEV or TST); stages serving it follow.

    With no VERSION, edits the version current in dev.
    """
    store = _store(ctx)
    name, ref = _target(target)
    version = str(ref) if ref is not None else "dev"
    if path is None and tests is None:
        tip = store.prompt(name, str(store.resolve(name, version).version))
        expect = expect or tip.revision
        files = _read_files(None, None, tip.source)
    else:
        files = _read_files(path, tests)
    result = store.edit(name, version, files, message, expect=expect, actor=_actor())
    if as_json:
        _emit(result.to_json())
    elif not result.changed:
        click.echo(f"{name}@{result.version} unchanged: the content is the same as its tip")
    else:
        also = f"; {', '.join(result.deployed_to)} updated" if result.deployed_to else ""
        click.echo(f"saved {name}@{result.version} as {result.revision[:10]}{also}")
        for stage in result.held:
            click.echo(
                f"{stage} keeps serving the approved revision until this one is approved "
                f"(require_approvals): then 'promptgit promote {name}@{result.version} --to {stage}'"
            )


@cli.command("new-version")
@click.argument("name")
@click.option("--from", "source", metavar="REF", help="Source version or stage (default: prod, else dev).")
@click.option("--major", is_flag=True, help="Start the next major version (v2.0).")
@click.option("--as", "as_version", metavar="vX.Y", help="A custom, never-used number.")
@click.option("-m", "--message", default="", help="Change summary.")
@click.option("--name", "label", metavar="TEXT", help="Name the version (default: its creation time, UTC).")
@click.option("--description", default="", metavar="TEXT", help="What it is for (fixed once created).")
@json_option
@click.pass_context
def new_version(
    ctx: click.Context,
    name: str,
    source: str | None,
    major: bool,
    as_version: str | None,
    message: str,
    label: str | None,
    description: str,
    as_json: bool,
) -> None:
    """Create the next version of NAME as a DEV draft (it becomes current in dev)."""
    if major and as_version:
        raise click.UsageError("--major and --as exclude each other: pick one")
    info = _store(ctx).new_version(
        name,
        source,
        major=major,
        as_version=as_version,
        message=message,
        version_name=label,
        description=description,
        actor=_actor(),
    )
    if as_json:
        _emit(info.to_json())
    else:
        click.echo(
            f"created {name}@{info.version} {info.name!r} ({info.revision[:10]}), a DEV draft served by dev"
        )


@cli.command()
@click.argument("target", metavar="NAME[@VERSION]")
@click.option("--to", type=click.Choice(PROMOTION_STAGES), help="Target stage (default: the next one).")
@json_option
@click.pass_context
def promote(ctx: click.Context, target: str, to: str | None, as_json: bool) -> None:
    """Deploy a draft to TST, or release it to PROD.

    With no VERSION: the version current in the stage before --to (default --to tst).
    """
    name, ref = _target(target)
    d = _store(ctx).promote(name, str(ref) if ref else None, to=to, actor=_actor())
    if as_json:
        _emit(d.to_json())
    else:
        click.echo(f"{d.stage} now serves {name}@{d.version} ({d.revision[:10]})")


@cli.command()
@click.argument("name")
@click.option("--to", "version", required=True, metavar="VERSION", help="The version to restore.")
@click.option("--stage", type=STAGE, default="prod", show_default=True)
@json_option
@click.pass_context
def rollback(ctx: click.Context, name: str, version: str, stage: str, as_json: bool) -> None:
    """Make STAGE serve again what it last served for VERSION (a logged deployment)."""
    d = _store(ctx).rollback(name, version, stage=stage, actor=_actor())
    if as_json:
        _emit(d.to_json() if d else None)
    elif d is None:
        from .names import Version

        shown = Version.maybe("v" + version.strip().removeprefix("v")) or version  # 1.0 -> v1.0
        click.echo(f"{stage} already serves {name}@{shown}: nothing to do")
    else:
        click.echo(f"{stage} rolled back to {name}@{d.version} ({d.revision[:10]})")


@cli.command()
@click.argument("target", metavar="NAME@VERSION")
@click.pass_context
def delete(ctx: click.Context, target: str) -> None:
    """Delete a DEV draft that never reached TST (its number is retired)."""
    name, version = _versioned(target, "the draft to delete", names_ok=False)
    _store(ctx).delete(name, version, actor=_actor())
    click.echo(f"deleted {name}@{version}; the number {version} is retired")


@cli.command()
@click.argument("target", metavar="NAME@VERSION")
@click.option("-m", "--message", "reason", required=True, help="Why: shown wherever the release is.")
@click.pass_context
def deprecate(ctx: click.Context, target: str, reason: str) -> None:
    """Deprecate a release: rollback skips it (needs role releaser; not the one prod serves)."""
    name, version = _versioned(target, "the release to deprecate")
    info = _store(ctx).deprecate(name, version, reason, actor=_actor())
    click.echo(f"deprecated {name}@{info.version}: {reason}")


@cli.command()
@click.argument("target", metavar="NAME@VERSION")
@click.pass_context
def undeprecate(ctx: click.Context, target: str) -> None:
    """Take a deprecation back (needs role releaser)."""
    name, version = _versioned(target, "the release")
    info = _store(ctx).undeprecate(name, version, actor=_actor())
    click.echo(f"{name}@{info.version} is no longer deprecated")


@cli.command()
@click.argument("target", metavar="NAME@VERSION")
@click.argument("branch")
@json_option
@click.pass_context
def review(ctx: click.Context, target: str, branch: str, as_json: bool) -> None:
    """Start review branch review/BRANCH at a draft's tip.

    Commit to it with git and push it (editors may force-push or delete it); compare
    it with 'promptgit diff NAME@VERSION NAME@review/BRANCH'; land it with a
    fast-forward push of the draft: git push origin review/BRANCH:VERSION.
    """
    name, version = _versioned(target, "the draft to review")
    info = _store(ctx).review(name, version, branch, actor=_actor())
    if as_json:
        _emit(info.to_json())
        return
    click.echo(f"started {info.branch} at {name}@{info.version} ({info.revision[:10]})")
    click.echo(
        f"work on it: git fetch origin && git checkout {info.branch}; commit, then git push origin "
        f"{info.branch}; land it: git push origin {info.branch}:{info.version}"
    )


@cli.command()
@click.argument("target", metavar="NAME@REF")
@click.option("-m", "--message", "comment", default="", help="A comment, in one line.")
@json_option
@click.pass_context
def approve(ctx: click.Context, target: str, comment: str, as_json: bool) -> None:
    """Approve the exact revision a draft's (or a review branch's) tip has now.

    Needs role editor. require_approvals in promptgit.yaml counts approvals of the
    revision being promoted, from people who authored none of its version's
    revisions; an edit after an approval needs a new one.
    """
    name, ref = _approvable(target)
    a = _store(ctx).approve(name, ref, comment, actor=_actor())
    if as_json:
        _emit(a.to_json())
        return
    click.echo(f"approved {name}@{a.version} at revision {a.revision[:10]} as {a.stamp.by}")
    if not a.counts:
        click.secho(
            f"warning: this approval does not count toward require_approvals: {a.why}", fg="yellow", err=True
        )


@cli.command("test")
@click.argument("target", metavar="NAME[@REF]")
@click.option("--env", type=STAGE, help="The stage whose environment to run in (default: REF's stage).")
@click.option("--no-record", is_flag=True, help="Do not record the run as a git note.")
@json_option
@click.pass_context
def test_(ctx: click.Context, target: str, env: str | None, no_record: bool, as_json: bool) -> None:
    """Run the prompt's tests.yaml cases; exit 1 if any fails.

    Each run is recorded as a git note on the tested revision
    (git log --notes=promptgit-tests), which require_tests gates read.
    """
    name, ref = _target(target)
    run = _store(ctx).test(name, ref, env=env, actor=_actor(), record=not no_record)
    if as_json:
        _emit(run.to_json())
    else:
        where = f"{run.env.stage} environment, provider {run.env.provider}"
        click.echo(f"{name}@{run.version} revision {run.revision[:10]} in the {where}")
        rows = [[c.name, "pass" if c.passed else "FAIL", f"{c.ms:.1f} ms", c.why] for c in run.cases]
        _table(rows, ["CASE", "RESULT", "TIME", "WHY"])
        failed = sum(not c.passed for c in run.cases)
        click.echo(f"{len(run.cases) - failed} passed, {failed} failed")
    if not run.passed:
        ctx.exit(1)


@cli.group()
def hooks() -> None:
    """Server-side git hooks: every push obeys the same rules as the CLI."""


@hooks.command("install")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.pass_context
def hooks_install(ctx: click.Context, names: tuple[str, ...]) -> None:
    """(Re)install the hooks into prompts' repositories (default: every prompt)."""
    done = _store(ctx).install_hooks(names)
    click.echo(f"hooks installed in {len(done)} prompt(s), running {sys.executable}")


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; change nothing.")
@json_option
@click.pass_context
def gc(ctx: click.Context, names: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Delete DEV drafts past retention.draft_max_age_days, then repack (default: every prompt).

    Only drafts that are not current in dev and were never in TST go, by the
    normal delete rules (their numbers are retired). Releases are never removed.
    """
    results = _store(ctx).gc(names, dry_run=dry_run, actor=_actor())
    if as_json:
        _emit([r.to_json() for r in results])
        return
    for r in results:
        verb = "would delete" if dry_run else "deleted"
        gone = f"{verb} {', '.join(r.deleted)}" if r.deleted else "no draft to delete"
        sizes = "" if dry_run else f"; {r.bytes_before:,} -> {r.bytes_after:,} bytes"
        click.echo(f"{r.prompt}: {gone}{sizes}")


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--repair", is_flag=True, help="Mend what can be mended without losing anything.")
@json_option
@click.pass_context
def doctor(ctx: click.Context, names: tuple[str, ...], repair: bool, as_json: bool) -> None:
    """Check every invariant of the store (default: every prompt); exit 1 if a problem remains.

    Finds what crashes and hand edits leave: stale locks, cut-short releases,
    edits and creations, missing hooks, moved tags, damaged objects. --repair
    finishes and cleans what it safely can; the rest is reported with its fix.
    """
    findings = _store(ctx).doctor(names, repair=repair, actor=_actor())
    if as_json:
        _emit([f.to_json() for f in findings])
    elif not findings:
        click.echo("no problems found")
    for f in findings if not as_json else ():
        where = f"{f.prompt}: " if f.prompt else ""
        state = "repaired" if f.repaired else f"fix: {f.fix}"
        click.echo(f"{where}{f.check}: {f.problem} ({state})")
    if any(not f.repaired for f in findings):
        ctx.exit(1)


@cli.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (not loopback: tokens needed)."
)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--read-only",
    is_flag=True,
    help="Refuse every change (API, page, git push): a read replica. A mirror is always read-only.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, read_only: bool) -> None:
    """Serve the JSON API, git over HTTP and the web page.

    With no tokens configured it binds loopback only and lets every caller do
    everything as you; create tokens to serve a team. A store kept by
    'promptgit mirror' is served read-only, and refusals name its primary.
    """
    missing = _missing_server_packages()
    if missing:
        _fail(
            ctx,
            ModuleNotFoundError(", ".join(missing)),
            f"'promptgit serve' needs the server extra, and this Python lacks {', '.join(missing)}\n"
            f"install it with: {_server_install_command()}",
        )
    from .server import serve as run
    from .server.errors import Refused
    from .store import Store

    store = Store(ctx.find_root().obj, read_only=read_only)
    try:
        run(store, host, port, _actor(), lambda line: click.echo(line, err=True))
    except Refused as e:
        _refuse(str(e))


def _missing_server_packages() -> list[str]:
    """The distributions of the `server` extra that this Python cannot import."""
    import importlib

    missing = []
    for package, modules in (
        ("fastapi", ("fastapi",)),
        ("pydantic", ("pydantic",)),
        ("uvicorn", ("uvicorn",)),
        ("python-multipart", ("python_multipart", "multipart")),
    ):
        for module in modules:
            try:
                importlib.import_module(module)
                break
            except ImportError:
                continue
        else:
            missing.append(package)
    return missing


def _server_install_command() -> str:
    """The exact pip command that adds the server extra to the promptgit this Python runs:
    from the checkout it was installed from (pip records it), else from the index."""
    import importlib.metadata
    import shlex
    from urllib.parse import unquote, urlparse

    spec, editable = "promptgit[server]", False
    try:
        origin = json.loads(importlib.metadata.distribution("promptgit").read_text("direct_url.json") or "{}")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        origin = {}
    url = urlparse(origin.get("url", ""))
    if url.scheme == "file" and "dir_info" in origin:
        spec = f"{unquote(url.path)}[server]"
        editable = bool(origin["dir_info"].get("editable"))
    python = shlex.quote(sys.executable)
    return f"{python} -m pip install {'-e ' if editable else ''}{shlex.quote(spec)}"


@cli.group()
def token() -> None:
    """API tokens: who may read, edit, release or administer over HTTP."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.pass_context
def token_create(ctx: click.Context, name: str, role: str) -> None:
    """Create a token; it is printed once, and only its salted hash is stored."""
    secret = _store(ctx).create_token(name, role)
    click.echo(secret)
    click.echo(f"token {name!r} ({role}) created: keep it now, it is not shown again", err=True)


@token.command("list")
@json_option
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """The tokens: name, role, created (never the secrets)."""
    rows = _store(ctx).tokens()
    if as_json:
        _emit(rows)
    elif not rows:
        click.echo("no tokens: 'promptgit serve' is local-only; create one with 'promptgit token create'")
    else:
        _table([[r["name"], r["role"], r["created"]] for r in rows], ["NAME", "ROLE", "CREATED"])


@token.command("revoke")
@click.argument("name")
@click.pass_context
def token_revoke(ctx: click.Context, name: str) -> None:
    """Revoke a token at once (the server re-reads promptgit.yaml when it changes)."""
    _store(ctx).revoke_token(name)
    click.echo(f"token {name!r} revoked")


@cli.group()
def webhooks() -> None:
    """Signed webhooks: the events 'promptgit serve' posts to the URLs in promptgit.yaml."""


@webhooks.command("log")
@click.option(
    "-n", "--limit", default=50, show_default=True, type=click.IntRange(min=1), help="At most N lines."
)
@click.option("--failures", is_flag=True, help="Only the failed attempts and the problems.")
@json_option
@click.pass_context
def webhooks_log(ctx: click.Context, limit: int, failures: bool, as_json: bool) -> None:
    """The webhook deliveries, newest first: each attempt, with the receiver's answer or
    what failed, and notices (a webhook starting, waiting for its secret, taken over).

    Only a running 'promptgit serve' delivers webhooks; this reads what it recorded.
    """
    store = _store(ctx)
    entries = store.webhook_log(limit, failures=failures)
    if as_json:
        _emit([e.to_json() for e in entries])
        return
    if not entries:
        if not store.config.webhooks:
            click.echo("no webhooks: list them in promptgit.yaml under webhooks: (see the README)")
        else:
            which = "failures" if failures else "deliveries"
            click.echo(f"no webhook {which} yet: 'promptgit serve' delivers them while it runs")
        return
    rows = []
    for e in entries:
        if e.event is None:
            result = ("" if e.ok else "problem: ") + e.detail
        elif e.ok:
            result = f"delivered ({e.status}, {e.ms:g} ms)" if e.ms is not None else f"delivered ({e.status})"
        else:
            result = f"failed: {e.detail}"
        rows.append([
            e.at[:19], e.webhook, e.event or "-", e.prompt or "-", str(e.attempt or "-"),
            (e.delivery or "-")[:8], result,
        ])  # fmt: skip
    _table(rows, ["AT", "WEBHOOK", "EVENT", "PROMPT", "TRY", "DELIVERY", "RESULT"])


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """The quick start: the daily loop on a new prompt, demo/greeting, in the store.

    It creates demo/greeting (and the store, when missing), edits it, promotes it to
    TST and PROD, releases a hotfix version and rolls prod back, printing the command
    each step stands for. When demo/greeting exists from an earlier run, it uses
    demo/greeting-1 (then -2, ...) and says so.
    """
    from .demo import run

    run(ctx.find_root().obj, click.echo, _actor())


# --- a prompt's own life: archive, restore, rename, delete (lifecycle.py) ---------------


@cli.command()
@click.argument("name")
@click.option("-m", "--reason", default="", help="Why, in one line: every read of it says so.")
@json_option
@click.pass_context
def archive(ctx: click.Context, name: str, reason: str, as_json: bool) -> None:
    """Archive prompt NAME: kept whole, out of every listing and read until restored.

    Needs role releaser. 'promptgit list --archived' lists archived prompts.
    """
    event = _store(ctx).archive(name, actor=_actor(), reason=reason)
    if as_json:
        _emit(event.to_json())
    else:
        click.echo(f"archived {name}: restore it with 'promptgit restore {name}'")


@cli.command()
@click.argument("name")
@json_option
@click.pass_context
def restore(ctx: click.Context, name: str, as_json: bool) -> None:
    """Bring archived prompt NAME back under its name (needs role releaser)."""
    event = _store(ctx).restore(name, actor=_actor())
    if as_json:
        _emit(event.to_json())
    else:
        click.echo(f"restored {name}")


@cli.command()
@click.argument("old")
@click.argument("new")
@json_option
@click.pass_context
def rename(ctx: click.Context, old: str, new: str, as_json: bool) -> None:
    """Rename prompt OLD to NEW, or move it to another collection (team/NEW), with all
    of its history (needs role admin).

    For rename_redirect_days (promptgit.yaml, default 30) the old name points to the
    new one: the library's error and the API's 308 name it.
    """
    store = _store(ctx)
    event = store.rename(old, new, actor=_actor())
    if as_json:
        _emit(event.to_json())
        return
    days = store.config.rename_redirect_days
    after = f"'{old}' points to it for {days} days" if days else f"'{old}' is free now"
    click.echo(f"renamed {old} to {new}, with all of its history; {after}")


@cli.command("delete-prompt")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: NAME and all of its history go for good.")
@click.pass_context
def delete_prompt(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete archived prompt NAME and all of its history, for good (needs role admin).

    Only an archived prompt can be deleted: 'promptgit archive NAME' first.
    """
    if not yes:
        raise click.UsageError(f"this deletes {name} and all of its history for good: add --yes to confirm")
    _store(ctx).delete_prompt(name, actor=_actor())
    click.echo(f"deleted {name} and all of its history")


# --- mirrors: read-only copies of a server's store, kept in sync by git (mirror.py) ---------


@cli.command()
@click.argument("url")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--token",
    envvar="PROMPTGIT_TOKEN",
    help="A token of the primary with role reader (or set $PROMPTGIT_TOKEN, which ps does not show). "
    "Never written down: give it on every run.",
)
@click.option("--once", is_flag=True, help="Sync once and exit (for cron, or a first copy).")
def mirror(url: str, directory: str, token: str | None, once: bool) -> None:
    """Keep DIR a read-only copy of the server at URL, until Ctrl-C.

    Every prompt (drafts, releases, test runs and promptgit's logs, archived
    prompts too) is fetched with git; then each change on the server is fetched
    as soon as its watch endpoint reports it. DIR refuses every change and names
    URL; 'promptgit --store DIR serve' serves it as a read replica.
    """
    from .mirror import Mirror

    m = Mirror(url, directory, token)
    if once:
        done = m.once()
        click.echo(f"{done} ({done.total} from {m.url})")
        if done.kept:
            click.secho(
                f"warning: {m.url} lists no prompt at all, so the {len(done.kept)} here were kept",
                fg="yellow",
                err=True,
            )
        return
    click.echo(f"promptgit mirror: keeping {m.path} a read-only copy of {m.url} (Ctrl-C stops)", err=True)
    try:
        m.run(lambda line: click.echo(line, err=True))
    except KeyboardInterrupt:
        click.echo("promptgit mirror: stopped", err=True)
