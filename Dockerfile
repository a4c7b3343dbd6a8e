# syntax=docker/dockerfile:1
# One image for every Veille component: the command picks it (`veille gateway`,
# `veille worker --role validate`, `veille sink`, `veille clinic`, `veille webhooks run`,
# `veille migrate`). Build from the repository's root:
#
#   docker build -t registry.example.org/veille:0.1.0 .
#
# Runs as uid/gid 10001 with a read-only root filesystem: the only writable paths are
# volumes, /tmp and the Faust data directory (VEILLE_WORKER_DATA_DIR, default below). No
# HEALTHCHECK: Compose and Kubernetes probe the metrics port's /healthz and /readyz (9400).
# deploy/README.md ("Container image") says what is checked offline and what is not.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtual environment with Veille and its runtime dependencies ---------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# Every dependency has a manylinux wheel for CPython 3.11 (psycopg[binary] brings libpq):
# no compiler here either. .dockerignore lets only pyproject.toml, README.md and the
# packages in (never .veille/, whose stack.env and keys are the local stack's secrets).
# pip compiles every module on install (the read-only image never writes a .pyc), then
# leaves the environment; `veille --help` imports every command: a missing module fails here.
WORKDIR /src
COPY . .
RUN python -m venv /opt/veille \
    && /opt/veille/bin/pip install . \
    && /opt/veille/bin/pip uninstall --yes pip setuptools wheel \
    && /opt/veille/bin/veille --help > /dev/null

# ---- runtime: the interpreter, the virtual environment, an unprivileged user ---------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="veille" \
      org.opencontainers.image.description="Remote patient monitoring: MQTT -> Kafka -> streams -> TimescaleDB -> clinicians" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# A fixed uid/gid (10001): Kubernetes' runAsUser, Compose's user and the owner of mounted
# secret files name it by number. No home directory, no login shell.
RUN groupadd --system --gid 10001 veille \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin veille \
    && install --directory --owner 10001 --group 10001 --mode 0750 \
       /var/lib/veille /var/lib/veille/faust

COPY --from=build /opt/veille /opt/veille

ENV PATH=/opt/veille/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VEILLE_WORKER_DATA_DIR=/var/lib/veille/faust

# Relative paths (VEILLE_STATE_DIR's default .veille) resolve here; nothing is written.
WORKDIR /var/lib/veille
USER 10001:10001
# 9400: /metrics, /healthz, /readyz (VEILLE_METRICS_PORT); 8080: the clinic's API.
EXPOSE 9400 8080
ENTRYPOINT ["veille"]
CMD ["--help"]
