"""Every bound on what hostile content may cost, in one place.

Each limit is far above what an honest prompt needs and far below what hurts a
server; a refusal names the limit and the fix. Rendering in a worker
(`bounded.py`) adds a wall-clock deadline and a memory ceiling on top.
"""

from __future__ import annotations

# --- YAML (content.py): prompt.yaml, tests.yaml, promptgit.yaml
MAX_ALIAS_NODES = 10_000  # nodes aliases (*name) may repeat: billion laughs stop here
MAX_DEPTH = 32  # nesting of YAML collections; libyaml recurses in C (a crash) past ~10,000
MAX_NUMBER_CHARS = 100  # a number literal (YAML or template); Python refuses past 4,300 digits

# --- templates (sandbox.py): checked when content is written and when it compiles
MAX_NODES = 5_000  # tags, expressions and text pieces in one prompt's templates: Jinja's
#                    compiler is quadratic in branches x names (5,000 nodes compile in ~1 s)
MAX_NESTING = 32  # blocks, brackets and operators inside one another (Jinja recurses)
MAX_LOOPS = 16  # {% for %} inside one another: Python compiles at most 20 nested blocks

# --- rendering (sandbox.py): checked before each allocation a template asks for
MAX_SIZE = 1_000_000  # characters or items one operation may build, and the output
MAX_TOTAL = 10_000_000  # characters or items one render may build in all
MAX_EXPONENT = 1000
MAX_INT_DIGITS = 4000  # Python cannot print integers past 4,300 digits

# --- workers (bounded.py)
RENDER_TIMEOUT = 5.0  # seconds of wall-clock time for one render, or one test case
TEST_TIMEOUT = 60.0  # seconds for a whole test run (plus each case's provider timeout)
MEMORY = 512 << 20  # bytes of address space a worker may use (RLIMIT_AS)
WORKERS = 4  # worker processes at most, started on demand
WAIT = 10.0  # seconds a render waits for a free worker before it gives up

# --- diffs (reads.py): what the template renders for each test case, on both sides
DIFF_CASES = 50  # test cases rendered per diff; the rest are named, not rendered
DIFF_TIMEOUT = 30.0  # seconds for all of one diff's renders
DIFF_LINES = 1_000  # lines a side compared line by line (difflib is quadratic: 10,000 take ~2 s)
DIFF_CHARS = 100_000  # characters a side shown and compared; the rest is named, not shown

# --- review branches (policy.py)
MAX_REVIEWS = 100  # review branches one prompt keeps: each is listed by every check and page
MAX_NOTES = 20  # notes refs of its users' own (refs/notes/commits, ...) one prompt keeps
