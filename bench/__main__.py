"""``python -m bench``: run every benchmark and write docs/BENCHMARKS.md."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
