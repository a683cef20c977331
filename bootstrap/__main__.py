"""``python -m bootstrap``."""

from __future__ import annotations

from bootstrap.cli import main

if __name__ == "__main__":
    main()
