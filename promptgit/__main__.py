"""`python -m promptgit`: the same as the `promptgit` command."""

from .cli import main

main()
