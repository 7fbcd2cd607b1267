"""`python -m perceiver_core` is the `perceiver` command."""

from .cli import main

raise SystemExit(main())
