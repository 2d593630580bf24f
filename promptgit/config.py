"""The store's own settings, `<store>/promptgit.yaml`: never served, no secrets.

    version: 1
    environments:              # where `promptgit test` runs, per stage
      dev: {provider: render}
      tst:
        provider: openai       # any OpenAI-compatible chat-completions server
        base_url: http://127.0.0.1:8080/v1
        model: gpt-4o-mini     # overrides prompt.yaml's model
        api_key_env: OPENAI_API_KEY   # the variable's NAME; the key never is stored
        timeout: 30
    require_tests: [prod]      # or true (tst and prod), or false
    require_approvals: {prod: 1, tst: 0}   # approvals a revision needs, from non-authors, to enter a stage
    rename_redirect_days: 30   # how long a renamed prompt's old name points to the new one
    webhooks:                  # where `promptgit serve` posts signed events (webhooks.py)
      - url: https://ci.example.com/promptgit
        secret: PROMPTGIT_HOOK_KEY   # the variable's NAME; it holds the signing key
        events: [deploy, release]    # default: every event
    mirror_of: https://prompts.example.com   # a read-only mirror of that server ('promptgit mirror')

Secrets are referenced by environment variable name only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .content import line_of, mapping_of
from .errors import InvalidContent
from .names import CONFIG_FILE, PROMOTION_STAGES, STAGES

FILE = CONFIG_FILE  # defined in names.py, which the hook shims and kept reads load without this module

PROVIDERS = ("render", "openai")
TOP_KEYS = {
    "version": "1",
    "environments": "a mapping of stage (dev, tst, prod) to its test environment",
    "require_tests": "true, false, or a list of the stages (tst, prod) whose promotion needs "
    "a passing test run",
    "require_approvals": "a mapping of stage (tst, prod) to how many approvals a revision needs "
    "to enter it, a whole number (0 or more), e.g. {prod: 1}",
    "tokens": "API tokens, written by 'promptgit token' (hashed only)",
    "retention": "a mapping with max_drafts (DEV drafts per prompt) and draft_max_age_days "
    "(what 'promptgit gc' deletes), both positive whole numbers",
    "rename_redirect_days": "a whole number of days (0 or more) during which a renamed prompt's "
    "old name points to its new one",
    "webhooks": "a list of webhooks, each a mapping of url, secret and events",
    "mirror_of": "the http(s) URL of the server this store is a read-only mirror of, written by "
    "'promptgit mirror' (remove it to make the store writable)",
}
RENAME_REDIRECT_DAYS = 30
ENV_KEYS = {
    "provider": "render or openai",
    "base_url": "the server's base URL, e.g. http://127.0.0.1:8080/v1",
    "model": "a model name that overrides prompt.yaml's",
    "api_key_env": "the NAME of an environment variable holding the API key",
    "timeout": "seconds to wait for an answer",
}


WEBHOOK_EVENTS = ("deploy", "release", "deprecate", "archive", "rename")
WEBHOOK_KEYS = {
    "url": "the http:// or https:// URL to POST each event to",
    "secret": "the NAME of the environment variable that holds the signing key (like PROMPTGIT_HOOK_KEY)",
    "events": f"a list of the events to send, of {', '.join(WEBHOOK_EVENTS)} (default: all)",
}
MAX_WEBHOOKS = 20  # one delivery thread each
MAX_URL = 2000
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class Webhook:
    """Where `promptgit serve` posts events, signed with the key in `$secret`."""

    url: str
    secret: str  # the environment variable's NAME, never the key
    events: frozenset[str] = frozenset(WEBHOOK_EVENTS)

    @property
    def key(self) -> str:
        """The webhook's identity on disk (its cursor and lock files): its URL's digest."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Environment:
    """Where a test runs: a provider and its settings (the key stays in the environment)."""

    stage: str
    provider: str = "render"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class Config:
    environments: Mapping[str, Environment] = field(default_factory=dict)
    require_tests: frozenset[str] = frozenset()
    tokens: Mapping[str, Any] = field(default_factory=dict)
    max_drafts: int | None = None  # DEV drafts a prompt may have at once
    draft_max_age_days: int | None = None  # age (of the latest revision) past which gc deletes a draft
    rename_redirect_days: int = RENAME_REDIRECT_DAYS
    webhooks: tuple[Webhook, ...] = ()
    require_approvals: Mapping[str, int] = field(default_factory=dict)  # stage -> approvals needed
    mirror_of: str | None = None  # the primary's URL: this store is its read-only mirror

    def environment(self, stage: str) -> Environment:
        return self.environments.get(stage) or Environment(stage)


def load(store: Path) -> Config:
    """Read and validate `<store>/promptgit.yaml` (a missing file is an empty config)."""
    path = store / FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    return parse(text)


def parse(text: str) -> Config:
    data = mapping_of(text, FILE, TOP_KEYS) if text.strip() else {}

    def bad(key: str, problem: str) -> InvalidContent:
        return InvalidContent(FILE, f"{key}: {problem}", line_of(text, key))

    envs: dict[str, Environment] = {}
    raw_envs = data.get("environments") or {}
    if not isinstance(raw_envs, dict):
        raise bad("environments", f"must be {TOP_KEYS['environments']}")
    for stage, settings in raw_envs.items():
        if stage not in STAGES:
            raise bad("environments", f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
        envs[stage] = _environment(stage, settings or {}, bad)

    gate = data.get("require_tests", False)
    if gate is True:
        require = frozenset(PROMOTION_STAGES)
    elif gate is False or gate is None:
        require = frozenset()
    elif isinstance(gate, list) and all(s in PROMOTION_STAGES for s in gate):
        require = frozenset(gate)
    else:
        raise bad("require_tests", f"must be {TOP_KEYS['require_tests']}")
    approvals = data.get("require_approvals") or {}
    if not isinstance(approvals, dict):
        raise bad("require_approvals", f"must be {TOP_KEYS['require_approvals']}")
    for stage, count in approvals.items():
        if stage not in PROMOTION_STAGES:
            raise bad(
                "require_approvals",
                f"unknown stage {stage!r}: use {' or '.join(PROMOTION_STAGES)} "
                "(nothing is promoted into dev)",
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise bad(
                "require_approvals",
                f"require_approvals.{stage} must be a whole number (0 or more), not {count!r}",
            )
    tokens = data.get("tokens") or {}
    if not isinstance(tokens, dict):
        raise bad("tokens", "must be a mapping; manage it with 'promptgit token'")
    retention = data.get("retention") or {}
    if not isinstance(retention, dict) or set(retention) - {"max_drafts", "draft_max_age_days"}:
        raise bad("retention", f"must be {TOP_KEYS['retention']}")
    for key, value in retention.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad("retention", f"retention.{key} must be a positive whole number, not {value!r}")
    days = data.get("rename_redirect_days", RENAME_REDIRECT_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise bad("rename_redirect_days", f"must be {TOP_KEYS['rename_redirect_days']}, not {days!r}")
    hooks = _webhooks(data.get("webhooks"), text)
    mirror_of = data.get("mirror_of")
    if mirror_of is not None and (not isinstance(mirror_of, str) or check_url(mirror_of)):
        problem = check_url(mirror_of) if isinstance(mirror_of, str) else "not a string"
        raise bad("mirror_of", f"must be {TOP_KEYS['mirror_of']}: {problem}")
    return Config(
        envs,
        require,
        tokens,
        max_drafts=retention.get("max_drafts"),
        draft_max_age_days=retention.get("draft_max_age_days"),
        rename_redirect_days=days,
        webhooks=hooks,
        require_approvals={s: n for s, n in approvals.items() if n > 0},
        mirror_of=mirror_of,
    )


def _webhooks(raw: Any, text: str) -> tuple[Webhook, ...]:
    """`webhooks:`, each entry checked, the error naming the entry's line."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidContent(FILE, f"webhooks: must be {TOP_KEYS['webhooks']}", line_of(text, "webhooks"))
    if len(raw) > MAX_WEBHOOKS:
        raise InvalidContent(
            FILE,
            f"webhooks: {len(raw)} webhooks, and a store may have at most {MAX_WEBHOOKS}",
            line_of(text, "webhooks"),
        )
    out: list[Webhook] = []
    for i, entry in enumerate(raw):

        def bad(problem: str, i: int = i) -> InvalidContent:
            return InvalidContent(FILE, f"webhooks[{i}]: {problem}", line_of(text, "webhooks", i))

        if not isinstance(entry, dict):
            raise bad(f"must be a mapping of {', '.join(WEBHOOK_KEYS)}")
        for key in entry:
            if key not in WEBHOOK_KEYS:
                raise bad(f"unknown key {key!r}: allowed keys are {', '.join(WEBHOOK_KEYS)}")
        url = entry.get("url")
        if not isinstance(url, str) or not url:
            raise bad(f"url: give {WEBHOOK_KEYS['url']}")
        problem = _url_problem(url)
        if not problem and "@" in urlsplit(url).netloc:
            # it would be shown and logged with the deliveries: the signature is the credential
            problem = "carries a user or password: remove it (the receiver checks the signature instead)"
        if problem:
            raise bad(f"url {url[:100]!r} {problem}")
        if any(w.url == url for w in out):
            raise bad(f"url {url!r} is listed twice: merge the two entries' events into one")
        secret = entry.get("secret")
        if secret is None:
            raise bad(f"secret: give {WEBHOOK_KEYS['secret']}; every delivery is signed with it")
        if not isinstance(secret, str) or not _ENV_NAME.fullmatch(secret):
            raise bad(
                f"secret must be {WEBHOOK_KEYS['secret']}, not the key itself: "
                "letters, digits and _, not starting with a digit"
            )
        events = entry.get("events", list(WEBHOOK_EVENTS))
        if not isinstance(events, list) or not events:
            raise bad(f"events must be {WEBHOOK_KEYS['events']}")
        for event in events:
            if event not in WEBHOOK_EVENTS:
                raise bad(f"unknown event {event!r}: use {', '.join(WEBHOOK_EVENTS)}")
        out.append(Webhook(url, secret, frozenset(events)))
    return tuple(out)


def _url_problem(url: str) -> str:
    """What is wrong with a webhook's URL ('' when nothing)."""
    if len(url) > MAX_URL:
        return f"is {len(url)} characters long: keep it under {MAX_URL}"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "contains a space or a control character: encode it (%20)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "is not a valid URL: write it like https://host[:port]/path"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "names no host: write it like https://host[:port]/path"
    return ""


def check_url(url: str) -> str:
    """What is wrong with `url` as a server's base URL (a mirror's primary; '' when
    nothing): a webhook's rules, and no credentials (they would be written down),
    no query or fragment."""
    problem = _url_problem(url)
    if problem:
        return f"{url[:100]!r} {problem}"
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "a URL must not carry a token or password: give the token separately"
    if parts.query or parts.fragment:
        return f"{url[:100]!r} has a query or fragment: give the server's base URL"
    return ""


def _environment(stage: str, settings: Any, bad: Any) -> Environment:
    where = f"environments.{stage}"
    if not isinstance(settings, dict):
        raise bad("environments", f"{where} must be a mapping of {', '.join(ENV_KEYS)}")
    for key in settings:
        if key not in ENV_KEYS:
            raise bad("environments", f"{where}: unknown key {key!r}: allowed keys are {', '.join(ENV_KEYS)}")
    provider = settings.get("provider", "render")
    if provider not in PROVIDERS:
        raise bad("environments", f"{where}.provider must be one of {', '.join(PROVIDERS)}")
    for key in ("base_url", "model", "api_key_env"):
        if key in settings and not isinstance(settings[key], str):
            raise bad("environments", f"{where}.{key} must be {ENV_KEYS[key]}")
    if provider == "openai" and not settings.get("base_url"):
        raise bad("environments", f"{where}: the openai provider needs base_url ({ENV_KEYS['base_url']})")
    timeout = settings.get("timeout", 60)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise bad("environments", f"{where}.timeout must be a positive number of seconds")
    return Environment(
        stage=stage,
        provider=provider,
        base_url=settings.get("base_url"),
        model=settings.get("model"),
        api_key_env=settings.get("api_key_env"),
        timeout=float(timeout),
    )
