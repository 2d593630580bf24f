"""The README's shell blocks, run as a new user would: step by step in one shell,
in a copy of the checkout, against a real server on 127.0.0.1. Each step must
succeed and print what its comment promises (the table below says what that
is); a README step the table does not know, or an entry no step has any more,
fails too, so a README edit that breaks a step cannot pass unnoticed.

The quick start installs promptgit into a fresh venv from PyPI. Here that one
step is stood in for by a venv that runs this checkout; under CI the last test
runs it for real, without the server extra."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from server_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# Read before the isolating fixture moves HOME: a fresh venv reuses pip's download cache.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")

HASH = r"[0-9a-f]{10}"
# The first line of each README step -> what its output must show (regexes, searched in
# stdout then stderr, ^ and $ per line), and optionally a shell check run right after it
# (its output is searched too). Every step must also exit 0.
EXPECT: dict[str, tuple[list[str], str]] = {
    # Quick start
    "scripts/quickstart": (
        [
            r"^\$ promptgit create demo/greeting -f prompt.yaml",
            r"^prod renders: 'Hi Ada, how can I help\?\\n'$",
        ],
        "",
    ),
    ". .venv/bin/activate": ([r"/\.venv/bin/promptgit$"], "command -v promptgit"),
    "promptgit init": ([r"^store ready at prompts$"], ""),
    "cat > prompt.yaml <<'YAML'": ([r"^  Hello \{\{ name \}\}, how can I help\?$"], "cat prompt.yaml"),
    'promptgit create greeting -f prompt.yaml -m "first draft"': (
        [rf"^created greeting@v1\.0 '[^']+' \({HASH}\), served by dev$"],
        "",
    ),
    "sed 's/how can I/how may I/' prompt.yaml > edited.yaml": (
        [r"^  Hello \{\{ name \}\}, how may I help\?$"],
        "cat edited.yaml",
    ),
    'promptgit edit greeting@v1.0 -f edited.yaml -m "politer"': (
        [rf"^saved greeting@v1\.0 as {HASH}; dev updated$"],
        "",
    ),
    "promptgit promote greeting@v1.0                  # DEV -> TST": (
        [rf"^tst now serves greeting@v1\.0 \({HASH}\)$"],
        "",
    ),
    "promptgit promote greeting@v1.0                  # TST -> PROD: tag v1.0": (
        [rf"^prod now serves greeting@v1\.0 \({HASH}\)$"],
        "git -C prompts/greeting.git tag",
    ),
    "promptgit render greeting --var name=Ada": ([r"^Hello Ada, how may I help\?$"], ""),
    "promptgit new-version greeting --from v1.0       # v1.1, a new DEV draft": (
        [rf"^created greeting@v1\.1 '[^']+' \({HASH}\), a DEV draft served by dev$"],
        "",
    ),
    "sed 's/Hello/Hi/' edited.yaml | promptgit edit greeting@v1.1": (
        [rf"^saved greeting@v1\.1 as {HASH}; dev updated$"],
        "",
    ),
    "promptgit promote greeting@v1.1                  # DEV -> TST": (
        [rf"^tst now serves greeting@v1\.1 \({HASH}\)$"],
        "",
    ),
    "promptgit promote greeting@v1.1                  # TST -> PROD: prod serves v1.1": (
        [rf"^prod now serves greeting@v1\.1 \({HASH}\)$"],
        "",
    ),
    "promptgit rollback greeting --to v1.0": (
        [rf"^prod rolled back to greeting@v1\.0 \({HASH}\)$", r"^Hello Ada, how may I help\?$"],
        "promptgit render greeting --var name=Ada",
    ),
    "promptgit versions greeting": ([r"^v1\.0\s+.+\s+PROD\s+prod\s", r"^v1\.1\s+.+\s+PROD\s+dev,tst\s"], ""),
    # Testing prompts
    "cat > tests.yaml <<'YAML'": ([r"^cases:$"], "cat tests.yaml"),
    "promptgit new-version greeting --from v1.0       # v1.2, a new DEV draft": (
        [rf"^created greeting@v1\.2 '[^']+' \({HASH}\), a DEV draft served by dev$"],
        "",
    ),
    'promptgit edit greeting@v1.2 --tests tests.yaml -m "add tests"': (
        [rf"^saved greeting@v1\.2 as {HASH}; dev updated$"],
        "",
    ),
    "promptgit test greeting@v1.2": (
        [r"^greeting@v1\.2 revision \w+ in the dev environment, provider render$", r"^3 passed, 0 failed$"],
        "",
    ),
    "promptgit promote greeting@v1.2": ([rf"^tst now serves greeting@v1\.2 \({HASH}\)$"], ""),
    "promptgit test greeting@tst": (
        [r"^greeting@v1\.2 revision \w+ in the tst environment, provider render$", r"^3 passed, 0 failed$"],
        "",
    ),
    "promptgit test greeting@v1.2 --env tst --json": ([r'"env": "tst".*"passed": true, "cases"'], ""),
    # Running the server
    "promptgit serve": (
        [
            r"^promptgit: no tokens configured: serving \S*prompts on http://127\.0\.0\.1:\d+ to this machine only",
            r"^200 200 200 200$",
        ],
        'curl -s -o /dev/null -w "%{http_code} %{http_code} %{http_code} %{http_code}\\n" '
        '"$_URL/" "$_URL/docs" "$_URL/prompts" "$_URL/openapi.json" | tail -c 16',
    ),
    "promptgit token create ci --role reader": ([r"^token 'ci' \(reader\) created"], ""),
    "promptgit token create alice --role editor": ([r"^token 'alice' \(editor\) created"], ""),
    "TOKEN=$(promptgit token create release-bot --role releaser)": (
        [r"^token 'release-bot' \(releaser\) created", r"^a token of \d\d+ characters$"],
        'echo "a token of ${#TOKEN} characters"',
    ),
    "promptgit token list": ([r"^alice\s+editor\s", r"^release-bot\s+releaser\s"], ""),
    "promptgit token revoke ci": ([r"^token 'ci' revoked$"], ""),
    "promptgit serve --host 0.0.0.0 --port 8080": (
        [r"^promptgit: serving \S*prompts on http://127\.0\.0\.1:\d+ \(tokens required\)$", r"^401$"],
        'curl -s -o /dev/null -w "%{http_code}\\n" "$_URL/prompts"',
    ),
    'T="Authorization: Bearer $TOKEN"; S=http://127.0.0.1:8080': (
        [r"^S=http://127\.0\.0\.1:\d+$"],
        "echo S=$S",
    ),
    'curl -H "$T" $S/prompts/greeting/versions': ([r'"version_id":"v1\.2","stage":"TST"'], ""),
    'curl -H "$T" -X POST $S/prompts/greeting/versions': ([r'^\{"version_id":"v1\.3","stage":"DEV"'], ""),
    'curl -H "$T" -X PUT  "$S/prompts/greeting/versions/v1.1/revert?stage=prod"': ([r'"prod":"v1\.1"'], ""),
    'curl -H "$T" -X POST "$S/prompts/greeting/versions/v1.0/rollback"': ([r'"prod":"v1\.0"'], ""),
    "ETAG=$(curl -sI": ([r'^ETAG="[0-9a-f]{40}"$'], 'echo "ETAG=$ETAG"'),
    'curl -H "$T" -X PATCH $S/prompts/greeting/versions/v1.3': (
        [r'"version_id":"v1\.3"', r'"change_summary":"shorter"'],
        "",
    ),
    'curl -H "$T" -X POST $S/prompts/greeting/versions/v1.3/promote': (
        [r'"stage":"tst","action":"promote","version":"v1\.3"'],
        "",
    ),
    'curl -H "$T" -X POST $S/prompts/greeting/versions/v1.3/test': ([r'"passed":true,"cases"'], ""),
    'curl -H "$T" $S/prompts/greeting/stages/prod': ([r'"stage":"prod","version":"v1\.0"'], ""),
    'curl -H "$T" -X POST $S/prompts/greeting/stages/prod/render': (
        [r'^\{"text":"Hello Ada, how may I help\?\\n"\}$'],
        "",
    ),
    # Reviewing a change (continues with the server of "Running the server")
    "cat >> prompts/promptgit.yaml <<'YAML'": (
        [r"^require_approvals: \{prod: 1\}"],
        "tail -1 prompts/promptgit.yaml",
    ),
    'promptgit new-version greeting --from v1.3 -m "warmer welcome"': (
        [rf"^created greeting@v1\.4 '[^']+' \({HASH}\), a DEV draft served by dev$"],
        "",
    ),
    "promptgit review greeting@v1.4 warmer": ([rf"^started review/warmer at greeting@v1\.4 \({HASH}\)$"], ""),
    "git clone -q prompts/greeting.git greeting-review && cd greeting-review": (
        [r"/greeting-review$"],
        "pwd",
    ),
    "git checkout -q review/warmer": ([r"^review/warmer$"], "git branch --show-current"),
    "sed -i.bak 's/Hello/Welcome/' prompt.yaml": ([r"^welcome, not hello$"], "git log -1 --format=%s"),
    "git push -q origin review/warmer                 #": (
        [r"^[0-9a-f]{40}\trefs/heads/review/warmer$"],
        "git ls-remote origin refs/heads/review/warmer",
    ),
    "git diff origin/v1.4 review/warmer": ([r"^\+.*Welcome \{\{ name \}\}"], ""),
    "git push -q origin review/warmer:v1.4": ([r"promptgit: dev now serves the tip of v1\.4"], ""),
    "cd ..": ([r"/promptgit$"], "pwd"),
    "promptgit diff greeting@v1.3 greeting@v1.4": (
        [
            r"^\+.*Welcome \{\{ name \}\}",
            r"^rendered for case 'exact text':$",
            r"^\+Welcome Bob, how may I help\?$",
        ],
        "",
    ),
    "promptgit promote greeting@v1.4                  # DEV -> TST": (
        [rf"^tst now serves greeting@v1\.4 \({HASH}\)$"],
        "",
    ),
    "promptgit promote greeting@v1.4 || true": (
        [rf"^error: prod requires 1 approval of revision {HASH} of v1\.4, and it has 0: 1 more needed"],
        "",
    ),
    'promptgit approve greeting@v1.4 -m "checked"': (
        [
            rf"^approved greeting@v1\.4 at revision {HASH} as ",
            r"^warning: this approval does not count toward require_approvals: .+ authored a revision of v1\.4",
        ],
        "",
    ),
    "BEA=$(promptgit token create bea --role editor)": ([r"^token 'bea' \(editor\) created"], ""),
    "SEEN=$(curl -sI": ([r'^SEEN="[0-9a-f]{40}"$'], 'echo "SEEN=$SEEN"'),
    'curl -s -H "Authorization: Bearer $BEA"': (
        [r'"by":"bea <bea@promptgit>","comment":"reads well","counts":true'],
        "",
    ),
    "promptgit approvals greeting@v1.4": (
        [
            rf"^greeting@v1\.4 at {HASH}: 1 approval\(s\) count \(prod needs 1\)",
            r"\sbea <bea@promptgit>\s+yes\s+reads well$",
        ],
        "",
    ),
    "promptgit promote greeting@v1.4                  # TST -> PROD": (
        [rf"^prod now serves greeting@v1\.4 \({HASH}\)$"],
        "",
    ),
}

# The README's sections whose shell blocks a new user runs in order.
SECTIONS = ["Quick start", "Testing prompts", "Running the server", "Reviewing a change"]


@dataclass
class Step:
    first: str  # the first line, as written
    text: str  # the whole command: continuation lines and here-documents included
    expect: list[str] = field(default_factory=list)
    check: str = ""


def shell_blocks(section: str) -> list[str]:
    """The ```sh blocks of one `## ` section of the README."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else None]
    return re.findall(r"^```sh\n(.*?)^```$", body, re.S | re.M)


def steps(block: str) -> list[Step]:
    """A block's commands: a line, plus its `\\` continuations and its here-document."""
    lines = block.splitlines()
    out: list[Step] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text = [line]
        while text[-1].endswith("\\"):
            text.append(lines[i])
            i += 1
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", line)
        if heredoc:
            while lines[i].strip() != heredoc.group(1):
                text.append(lines[i])
                i += 1
            text.append(lines[i])
            i += 1
        out.append(Step(line, "\n".join(text)))
    return out


def readme_steps(sections: list[str]) -> list[Step]:
    found = [s for section in sections for block in shell_blocks(section) for s in steps(block)]
    for step in found:
        keys = [k for k in EXPECT if step.first.startswith(k)]
        assert keys, (
            f"a README step this test does not know: {step.first!r}: add what it should print to EXPECT"
        )
        step.expect, step.check = EXPECT[max(keys, key=len)]
    return found


def script(steps: list[Step], out: Path, port: int) -> str:
    """One bash script running every step in the same shell (variables carry over),
    each step's stdout, stderr and status kept apart; `promptgit serve` runs in the
    background on `port`, until the next one or the end."""
    lines = [
        f'_URL=http://127.0.0.1:{port}; _server=""',
        "_serve() {",
        '  if [ -n "$_server" ]; then kill "$_server"; wait "$_server" 2>/dev/null; fi',
        f'  promptgit "$@" >"{out}/serve.log" 2>&1 &',
        "  _server=$!",
        "  for _ in $(seq 600); do",
        '    curl -s -o /dev/null "$_URL/openapi.json" && break',
        '    kill -0 "$_server" 2>/dev/null || break',
        "    sleep 0.05",
        "  done",
        f'  cat "{out}/serve.log"',
        "}",
        'trap \'[ -n "$_server" ] && kill "$_server"\' EXIT',
    ]
    for n, step in enumerate(steps):
        text = step.text.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        if text.startswith("promptgit serve"):
            args = text.split("#", 1)[0].split()[1:]
            args = [a for a in args if a not in ("--host", "0.0.0.0", "--port", "8080")]
            text = "_serve " + " ".join([*args, "--port", str(port)])
        lines.append(f'{{\n{text}\n}} >"{out}/{n}.out" 2>"{out}/{n}.err"\necho $? >"{out}/{n}.rc"')
        if step.check:
            lines.append(f'{{ {step.check}; }} >"{out}/{n}.check" 2>&1')
    return "\n".join(lines) + "\n"


def run_steps(steps: list[Step], work: Path, env: dict[str, str]) -> None:
    out = work.parent / "steps"
    out.mkdir()
    (out / "run.sh").write_text(script(steps, out, free_port()))
    done = subprocess.run(["bash", str(out / "run.sh")], cwd=work, env=env, timeout=600,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for n, step in enumerate(steps):
        seen = "\n".join(
            (out / f"{n}.{kind}").read_text()
            for kind in ("out", "err", "check")
            if (out / f"{n}.{kind}").exists()
        )
        where = f"README step {step.first!r} printed:\n{seen}"
        assert (out / f"{n}.rc").read_text().strip() == "0", where
        for pattern in step.expect:
            assert re.search(pattern, seen, re.M), f"{where}\n(expected {pattern!r})"
        if step.first.startswith("curl"):
            assert '"error"' not in (out / f"{n}.out").read_text(), where


def checkout_copy(where: Path) -> Path:
    """The checkout's files, as a user has them after cloning (no venv, no store)."""
    skip = shutil.ignore_patterns(".git", ".venv", "build", "prompts", "__pycache__", "*.egg-info", ".*cache")
    shutil.copytree(ROOT, where, ignore=skip)
    return where


def stand_in_venv(work: Path) -> None:
    """A .venv whose promptgit is this checkout's, and a quick start that uses it."""
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"; export PATH\n')
    (bin_dir / "promptgit").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m promptgit "$@"\n')
    (bin_dir / "promptgit").chmod(0o755)
    (work / "scripts" / "quickstart").write_text("#!/bin/sh\nexec .venv/bin/promptgit demo\n")


def test_every_step_of_the_readme_does_what_its_comment_says(tmp_path: Path) -> None:
    work = checkout_copy(tmp_path / "promptgit")
    stand_in_venv(work)
    found = readme_steps(SECTIONS)
    firsts = [s.first for s in found]
    for key in EXPECT:
        assert any(f.startswith(key) for f in firsts), (
            f"EXPECT names a step the README no longer has: {key!r}"
        )
    run_steps(found, work, dict(os.environ))


def test_a_readme_step_that_breaks_fails_the_test(tmp_path: Path) -> None:
    """The harness itself: the README's old `edit` step, which saved the same file
    again (and printed "unchanged"), is caught."""
    work = checkout_copy(tmp_path / "promptgit")
    stand_in_venv(work)
    walkthrough = readme_steps(["Quick start"])[1:]
    for step in walkthrough:
        if step.first.startswith("promptgit edit greeting@v1.0"):
            step.text = 'promptgit edit greeting@v1.0 -f prompt.yaml -m "tighten tone"'
    with pytest.raises(AssertionError, match=r"greeting@v1.0 unchanged: the content is the same as its tip"):
        run_steps(walkthrough, work, dict(os.environ))


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="installs from PyPI into a fresh venv: CI only")
def test_the_quick_start_in_a_fresh_venv_without_the_server_extra(tmp_path: Path) -> None:
    """scripts/quickstart for real, with a stock Python (Debian's, where there is one),
    then the walkthrough in its venv; `promptgit serve` there names what to install."""
    work = checkout_copy(tmp_path / "promptgit")
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHON=python, PIP_CACHE_DIR=PIP_CACHE, PIP_DISABLE_PIP_VERSION_CHECK="1")
    found = [s for s in readme_steps(["Quick start", "Testing prompts"])]
    run_steps(found, work, env)
    venv = work / ".venv" / "bin"
    assert subprocess.run([venv / "python", "-c", "import fastapi"], capture_output=True).returncode == 1
    out = subprocess.run([venv / "promptgit", "serve"], cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        "error: 'promptgit serve' needs the server extra, and this Python lacks fastapi, pydantic, "
        "uvicorn, python-multipart",
        f"error: install it with: {venv / 'python'} -m pip install '{work}[server]'",
    ]
