#!/bin/sh
# Run once by the TimescaleDB image (/docker-entrypoint-initdb.d), as the superuser, when the
# data volume is empty: the application database, its owner and one login role per
# component (docs/SECURITY.md, "Database roles"). `veille migrate` (the `migrate` service,
# as the owner) then creates the schema and grants each role exactly what it needs. The
# passwords are Compose secrets (deploy/compose/generate-secrets.sh writes them); the same
# values are in the components' env files. Changing one later: ALTER ROLE ... PASSWORD, then
# the env file.
set -eu

secret() {
    cat "/run/secrets/$1"
}

# psql reads the statements on stdin, where :'name' quotes a -v variable as a literal.
psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner="$(secret db_owner_password)" \
    -v sink="$(secret db_sink_password)" \
    -v worker="$(secret db_worker_password)" \
    -v registry="$(secret db_registry_password)" \
    -v clinic="$(secret db_clinic_password)" <<'SQL'
CREATE ROLE veille LOGIN PASSWORD :'owner';
CREATE DATABASE veille OWNER veille;
CREATE ROLE veille_sink LOGIN PASSWORD :'sink';
CREATE ROLE veille_worker LOGIN PASSWORD :'worker';
CREATE ROLE veille_registry LOGIN PASSWORD :'registry';
CREATE ROLE veille_clinic LOGIN PASSWORD :'clinic';
\connect veille
-- TimescaleDB is not a trusted extension: the superuser creates it; `veille migrate`'s own
-- CREATE EXTENSION IF NOT EXISTS then finds it.
CREATE EXTENSION IF NOT EXISTS timescaledb;
SQL
