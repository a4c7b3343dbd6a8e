"""``veille demo``: the whole pipeline on the local stack, a simulated ward, a live panel.

One module per job: the ward it simulates (:mod:`._ward`), provisioning its devices and the
demo login (:mod:`._provision`), the bad payloads that show the dead-letter path
(:mod:`._bad_payloads`), Kafka lag polling (:mod:`._lag`), the live panel and totals
(:mod:`._panel`), and the run that ties them together (:mod:`._run`).
"""

from __future__ import annotations

from ._provision import provision_devices, provision_identities
from ._run import DemoOptions, run_demo
from ._ward import demo_ward

# The ward and its provisioning are shared with ``veille drill``, which plays the same ward.
__all__ = ["DemoOptions", "demo_ward", "provision_devices", "provision_identities", "run_demo"]
