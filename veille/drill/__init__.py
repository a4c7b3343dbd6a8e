"""``veille drill``: recovery from total loss, rehearsed on a stack of its own and timed.

The run (:mod:`._run`, its steps in the module's docstring), a big data set generated in
the database (:mod:`._preload`) and what was measured and checked (:mod:`._report`).
docs/OPERATIONS.md holds the figures and the procedure for a real recovery.
"""

from __future__ import annotations

from ._report import DrillReport, Timings
from ._run import DrillError, DrillOptions, run_drill

__all__ = ["DrillError", "DrillOptions", "DrillReport", "Timings", "run_drill"]
