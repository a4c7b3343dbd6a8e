#!/usr/bin/env bash
# Bootstrap what `make demo` and `make test` need on a fresh machine:
# Debian packages (Mosquitto, PostgreSQL 15 with pgaudit, pgBackRest for backups and WAL archiving, Prometheus, Node.js
# for the TimescaleDB test build, Chromium for the browser test)
# and a .venv with Veille and its dev extras. Re-running is cheap: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || need_pkgs+=(mosquitto mosquitto-clients)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql-15)
# The local stack archives its WAL with pgBackRest (docs/BACKUP.md).
command -v pgbackrest >/dev/null 2>&1 || need_pkgs+=(pgbackrest)
# pgaudit logs the SQL operators type as the superuser or the schema owner (docs/SECURITY.md).
ls /usr/lib/postgresql/*/lib/pgaudit.so >/dev/null 2>&1 || need_pkgs+=(postgresql-15-pgaudit)
# `veille stack up --monitoring` runs Prometheus (on a free port of its own, not the package's
# service on 9090); `make test` runs promtool on the alert rules.
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
# The clinic page's browser test (tests/browser) drives Debian's Chromium headless.
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || need_pkgs+=(chromium chromium-driver)
if [[ "${VEILLE_SKIP_NODE:-0}" != 1 ]]; then
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need_pkgs+=(nodejs npm)
fi

if (( ${#need_pkgs[@]} )); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    echo "bootstrap: missing system packages: ${need_pkgs[*]}" >&2
    echo "bootstrap: run: sudo apt-get install -y ${need_pkgs[*]}" >&2
    exit 1
  fi
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "bootstrap: Python >= 3.11 is required ($python is $("$python" -V 2>&1))" >&2
  exit 1
fi
[[ -x .venv/bin/python ]] || "$python" -m venv .venv

stamp=.venv/.veille-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "bootstrap: installing Veille and its dev extras into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$want" > "$stamp"
fi
