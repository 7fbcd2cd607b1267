"""`python -m perceiver_core` is the `perceiver` command."""

from .commands.cli import main

raise SystemExit(main())
