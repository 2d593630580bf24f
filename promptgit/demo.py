"""The quick start: the daily loop on one prompt, told as the CLI commands it stands for."""

from __future__ import annotations

from collections.abc import Callable

from .model import Actor
from .store import Store

FIRST = """\
description: Greets a customer by name
model: gpt-4o-mini
parameters: {temperature: 0.2}
variables: [name]
template: |
  Hello {{ name }}, how can I help you today?
"""


NAME = "demo/greeting"


def run(path: str, say: Callable[[str], None], me: Actor) -> str:
    """Create a prompt, iterate, promote, release, hotfix and roll back; return its name.

    The prompt is NAME, or NAME-1, NAME-2, ... when earlier demos took those (said first)."""
    store = Store.init(path)
    taken = set(store.names())
    name = next(n for n in (f"{NAME}-{i}" if i else NAME for i in range(1000)) if n not in taken)
    if name != NAME:
        earlier = sorted(
            (n for n in taken if n == NAME or n.startswith(f"{NAME}-")), key=lambda n: (len(n), n)
        )
        where = "is there from an earlier demo" if len(earlier) == 1 else "are there from earlier demos"
        say(f"{', '.join(earlier)} {where}, so this one walks through a new prompt, {name}\n")

    def step(cmd: str, what: str) -> None:
        say(f"$ promptgit {cmd}\n  {what}")

    v = store.create(name, {"prompt.yaml": FIRST}, "first draft", actor=me)
    step(f"create {name} -f prompt.yaml -m 'first draft'", f"{v.version}, a DEV draft served by dev")
    r = store.edit(name, "v1.0", {"prompt.yaml": FIRST.replace("Hello", "Hi")}, "friendlier", actor=me)
    step(f"edit {name}@v1.0 -f prompt.yaml -m friendlier", f"revision {r.revision[:10]}, dev follows")
    store.promote(name, "v1.0", actor=me)
    step(f"promote {name}@v1.0", "DEV -> TST")
    fixed = FIRST.replace("Hello", "Hi").replace("help you today", "help")
    store.edit(name, "v1.0", {"prompt.yaml": fixed}, "shorter, fixed in TST", actor=me)
    step(f"edit {name}@v1.0 -f prompt.yaml -m 'shorter, fixed in TST'", "tst follows the draft")
    store.promote(name, "v1.0", actor=me)
    step(f"promote {name}@v1.0", "TST -> PROD: tag v1.0, branch gone")
    hot = store.new_version(name, "v1.0", message="hotfix", actor=me)
    store.edit(name, hot.version, {"prompt.yaml": fixed.replace("Hi", "Hello")}, "formal again", actor=me)
    store.promote(name, hot.version, actor=me)
    store.promote(name, hot.version, actor=me)
    step(f"new-version {name} --from v1.0; edit; promote twice", f"{hot.version} released to PROD")
    store.rollback(name, "v1.0", stage="prod", actor=me)
    step(f"rollback {name} --to v1.0", "prod serves v1.0 again, logged as a rollback")
    say("")
    say(f"prod renders: {store.get(name, 'prod').render(name='Ada')!r}")
    say("")
    for info in store.versions(name):
        say(f"  {info.version}  {info.stage:<4}  current in: {','.join(info.current_in) or '-'}")
    repo = store.path / f"{name}.git"
    say("")
    say("The same story in plain git:")
    say(f"  git -C {repo} log --first-parent --format='%h %an %s' prod")
    say(f"  git -C {repo} show prod:prompt.yaml")
    say(f"  git -C {repo} tag")
    say(f"Next: promptgit --store {path} versions {name}")
    return name
