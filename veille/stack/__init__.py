"""The embedded local stack (``veille stack``) and the pipeline's components as child
processes on it: used by ``make demo``, the benchmark and the integration tests."""

from __future__ import annotations

from ._components import (
    ComponentProcess,
    PipelineProcesses,
    clinic_component,
    component_env,
    wait_for_file,
    wait_for_http,
)
from ._kafka_admin import create_topics
from ._postgres import PostgresCluster
from ._process import ProcessHandle, free_port
from ._prometheus import register_scrape_target, remove_scrape_target, scrape_targets
from ._stack import DATABASE_URL_VARIABLES, LocalStack, ServiceStatus
from ._tansu import find_tansu
from ._topology import LocalTopology, PlannedComponent, Topology, plan_topology

__all__ = [
    "DATABASE_URL_VARIABLES",
    "ComponentProcess",
    "LocalStack",
    "LocalTopology",
    "PostgresCluster",
    "ProcessHandle",
    "PipelineProcesses",
    "PlannedComponent",
    "ServiceStatus",
    "Topology",
    "clinic_component",
    "component_env",
    "create_topics",
    "find_tansu",
    "free_port",
    "plan_topology",
    "register_scrape_target",
    "remove_scrape_target",
    "scrape_targets",
    "wait_for_file",
    "wait_for_http",
]
