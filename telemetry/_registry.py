"""One registry per process, with what every component exports besides its own metrics."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector

__all__ = ["ComponentRegistry", "veille_version"]


def veille_version() -> str:
    try:
        return version("veille")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


class ComponentRegistry:
    """A component's own :class:`CollectorRegistry` (never the library's global one: two
    components in one test process must not share counters), with the process's CPU and
    memory, the build and whether the component says it is ready."""

    def __init__(self, component: str) -> None:
        self.component = component
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Gauge(
            "veille_build_info",
            "Veille's version this component runs (always 1)",
            ["component", "version"],
            registry=self.registry,
        ).labels(component, veille_version()).set(1)
        self._ready = Gauge(
            "veille_component_ready",
            "1 when the component's /readyz answers 200: connected and caught up enough",
            ["component"],
            registry=self.registry,
        ).labels(component)

    def set_ready(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)
