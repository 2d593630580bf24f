"""The commands that only read (list, show, versions, log, diff, approvals, render),
loaded by cli.py when one of them runs: a read's start-up defines no other command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable

import click

from .cli import _approvable, _emit, _json, _reader, _store, _table, _table_text, _target, cli, json_option
from .errors import InvalidInput
from .names import STAGES


@cli.command("list")
@click.option("--archived", is_flag=True, help="List the archived prompts instead.")
@json_option
@click.pass_context
def list_(ctx: click.Context, archived: bool, as_json: bool) -> None:
    """Every prompt with the version current in each stage."""
    if archived:
        return _list_archived(ctx, as_json)

    def produce() -> str:
        prompts = _reader(ctx).list()
        if as_json:
            return _json([p.to_json() for p in prompts])
        if not prompts:
            return "no prompts yet: promptgit create NAME -f prompt.yaml\n"
        return _table_text([[p.name, *(p.current[s] or "-" for s in STAGES)] for p in prompts],
                           ["NAME", *(s.upper() for s in STAGES)])  # fmt: skip

    from . import answers

    _print_answer(ctx, ["list", as_json], answers.listing_state, produce)


@cli.command()
@click.argument("target", metavar="NAME[@REF]")
@json_option
@click.pass_context
def show(ctx: click.Context, target: str, as_json: bool) -> None:
    """A version (or what a stage serves) and its content. No REF: prod if released, else dev."""
    name, ref = _target(target)

    def produce() -> str:
        shown = _reader(ctx).show(name, ref)
        if as_json:
            return _json(shown.to_json())
        p = shown.prompt
        lines = [f"{name}@{p.version}  {shown.stage}  revision {p.revision[:10]}"]
        if shown.info:
            lines.append(f"name: {shown.info.name}")
            if shown.info.description:
                lines.append(f"description: {shown.info.description}")
            if shown.info.deprecated:
                lines.append(f"deprecated: {shown.info.deprecated}")
        if shown.current_in:
            lines.append(f"current in: {', '.join(shown.current_in)}")
        if shown.deployment:
            d = shown.deployment
            lines.append(f"deployed: {d.action} by {d.stamp.by} at {d.stamp.at}")
        lines += [f"note: {note}" for note in shown.notes]
        return "\n".join([*lines, "", p.source.rstrip(), ""])

    if ref is not None and ref.kind == "revision":
        click.echo(produce(), nl=False)  # a sha no ref reaches may be pruned: read it each time
    else:
        _answer(ctx, name, ["show", target, as_json], produce)


@cli.command()
@click.argument("name")
@json_option
@click.pass_context
def versions(ctx: click.Context, name: str, as_json: bool) -> None:
    """The version history: stage, current stages, created/updated, summary."""

    def produce() -> str:
        infos = _reader(ctx).versions(name)
        if as_json:
            return _json([v.to_json() for v in infos])
        rows = [
            [
                v.version,
                v.name,
                v.stage + (" (deprecated)" if v.deprecated else ""),
                ",".join(v.current_in) or "-",
                v.created.at[:16],
                v.updated.at[:16],
                v.summary,
            ]
            for v in infos
        ]
        return _table_text(rows, ["VERSION", "NAME", "STAGE", "CURRENT", "CREATED", "UPDATED", "LAST CHANGE"])

    _answer(ctx, name, ["versions", as_json], produce)


def _answer(ctx: click.Context, name: str, query: list[object], produce: Callable[[], str]) -> None:
    """Print what `produce` prints, or the index's answer to the same command about the
    prompt as it is now (answers.py), without reading the prompt again."""
    from .names import check_name

    try:
        check_name(name)
    except InvalidInput:
        click.echo(produce(), nl=False)  # which says what is wrong with the name
        return
    from . import answers

    _print_answer(ctx, [name, *query], answers.prompt_state(name), produce)


def _print_answer(
    ctx: click.Context, query: list[object], state: Callable[[str], str | None], produce: Callable[[], str]
) -> None:
    from . import answers

    key = json.dumps([*query, sys.stdout.isatty()])
    click.echo(answers.answered(ctx.find_root().obj, key, state, produce), nl=False)


@cli.command()
@click.argument("target", metavar="NAME[@REF]")
@click.option("--events", is_flag=True, help="The prompt's archive, restore and rename events instead.")
@json_option
@click.pass_context
def log(ctx: click.Context, target: str, events: bool, as_json: bool) -> None:
    """A stage's deployment log, or a version's revisions; newest first."""
    from .model import DeploymentInfo

    if events:
        return _log_events(ctx, target, as_json)
    name, ref = _target(target)
    entries = _reader(ctx).log(name, ref)
    if as_json:
        _emit([e.to_json() for e in entries])
        return
    for e in entries:
        if isinstance(e, DeploymentInfo):
            mark = "  <- rollback" if e.action == "rollback" else ""
            if not e.audited:
                mark += "  (not in the audit log: who and when are the commit's own claim)"
            click.echo(
                f"{e.deployment[:10]}  {e.stamp.at[:19]}  {e.action:<8} {e.version:<7} "
                f"{e.revision[:10]}  {e.stamp.by}{mark}"
            )
        else:
            mark = ""
            if e.tests:
                last = e.tests[-1]
                mark = f"  [tests {'passed' if last.get('passed') else 'FAILED'} in {last.get('env')}]"
            click.echo(f"{e.revision[:10]}  {e.stamp.at[:19]}  {e.stamp.by}  {e.summary}{mark}")


@cli.command()
@click.argument("targets", nargs=-1, required=True, metavar="NAME@A NAME@B")
@json_option
@click.pass_context
def diff(ctx: click.Context, targets: tuple[str, ...], as_json: bool) -> None:
    """What changed from NAME@A to NAME@B (any REFs: versions, stages, revisions,
    review branches): a unified diff of prompt.yaml and tests.yaml, then the template
    rendered with each test case's variables on both sides, as the model gets it."""
    if len(targets) == 3 and "@" not in targets[0]:  # the older spelling: NAME A B
        targets = (f"{targets[0]}@{targets[1]}", f"{targets[0]}@{targets[2]}")
    if len(targets) != 2:
        raise click.UsageError("give two refs of one prompt, e.g. greeting@v1.0 greeting@review/warmer")
    (name, a), (other, b) = (_target(t) for t in targets)
    if a is None or b is None or other != name:
        raise click.UsageError(
            f"give two refs of one prompt: {name}@A {name}@B (e.g. {name}@v1.0 {name}@review/warmer)"
        )
    d = _store(ctx).diff(name, a, b)
    if as_json:
        _emit(d.to_json())
        return
    if d.patch:
        click.echo(d.patch.rstrip())
    else:
        click.echo(f"no difference between {a} and {b} in prompt.yaml and tests.yaml")
    for note in d.notes:
        click.echo(f"note: {note}")
    if not d.rendered:
        click.echo("no test cases to render: a tests.yaml with cases shows what the model gets")
    for r in d.rendered:
        if r.diff:
            click.echo(f"rendered for case {r.case!r}:")
            click.echo(r.diff.rstrip())
        else:
            click.echo(f"rendered for case {r.case!r}: the same on both sides")


@cli.command()
@click.argument("target", metavar="NAME@REF")
@json_option
@click.pass_context
def approvals(ctx: click.Context, target: str, as_json: bool) -> None:
    """The approvals of a version's (or a review branch's) revisions, newest first,
    and whether each counts for its tip."""
    name, ref = _approvable(target)
    found = _store(ctx).approvals(name, ref)
    if as_json:
        _emit(found.to_json())
        return
    needs = ", ".join(f"{s} needs {n}" for s, n in found.required.items()) or "no stage requires approvals"
    click.echo(
        f"{name}@{found.ref} at {found.revision[:10]}: {found.counted} approval(s) count ({needs}); "
        f"authors: {', '.join(p.by for p in found.authors)}"
    )
    if not found.approvals:
        click.echo(f"no approvals yet: 'promptgit approve {name}@{found.ref}'")
        return
    rows = [
        [a.revision[:10], a.stamp.at[:19], a.stamp.by, "yes" if a.counts else f"no: {a.why}", a.comment]
        for a in found.approvals
    ]
    _table(rows, ["REVISION", "AT", "BY", "COUNTS", "COMMENT"])


@cli.command()
@click.argument("target", metavar="NAME[@REF]")
@click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help="A template variable.")
@json_option
@click.pass_context
def render(ctx: click.Context, target: str, pairs: Iterable[str], as_json: bool) -> None:
    """Render a prompt with --var values (in Jinja2's sandbox)."""
    variables = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: write KEY=VALUE", param_hint="--var")
        variables[key] = value
    name, ref = _target(target)
    out = _store(ctx).render(name, ref, variables)
    if as_json:
        from .model import rendered_json

        _emit(rendered_json(out))
    elif isinstance(out, list):
        for m in out:
            click.echo(f"[{m['role']}]\n{m['content']}")
    else:
        click.echo(out, nl=not out.endswith("\n"))


def _list_archived(ctx: click.Context, as_json: bool) -> None:
    archived = _store(ctx).archived()
    if as_json:
        _emit([a.to_json() for a in archived])
    elif not archived:
        click.echo("no archived prompts")
    else:
        rows = []
        for a in archived:
            e = a.archived
            rows.append([a.name, e.stamp.at[:19], e.stamp.by, e.reason] if e else [a.name, "-", "-", ""])
        _table(rows, ["NAME", "ARCHIVED", "BY", "REASON"])


def _log_events(ctx: click.Context, target: str, as_json: bool) -> None:
    name, ref = _target(target)
    if ref is not None:
        raise click.UsageError(f"--events shows the whole prompt's events: give {name}, without @{ref}")
    events = _store(ctx).events(name)
    if as_json:
        _emit([e.to_json() for e in events])
    elif not events:
        click.echo(f"no events: {name} was never archived, restored or renamed")
    for e in events if not as_json else ():
        what = f"{e.previous} -> {e.name}" if e.previous else e.name
        reason = f"  ({e.reason})" if e.reason else ""
        click.echo(f"{e.stamp.at[:19]}  {e.event:<8} {what}  {e.stamp.by}{reason}")
