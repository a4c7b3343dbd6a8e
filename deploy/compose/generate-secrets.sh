#!/bin/sh
# Writes every secret deploy/compose.yaml reads into deploy/compose/secrets/ (or DIR): random
# passwords and the pseudonym key once, then the components' env files from them on every
# run (so an env file always agrees with the password the database was given). Run as root:
# each file goes to the container user that reads it (secrets/README.md lists them).
#
#   sudo MQTT_HOSTNAME=mqtt.example.org sh deploy/compose/generate-secrets.sh
#   sh deploy/compose/generate-secrets.sh --no-chown DIR   # rootless Docker, or a dry run
#
# The hospital's PKI files (mqtt_ca.crt, broker.crt, broker.key) are not generated: copy
# them in first; their ownership and modes are fixed here too.
set -eu

chown_files=1
if [ "${1:-}" = "--no-chown" ]; then
    chown_files=0
    shift
fi
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/secrets}

if [ -z "${MQTT_HOSTNAME:-}" ] && [ -f "$here/../.env" ]; then
    MQTT_HOSTNAME=$(sed -n 's/^MQTT_HOSTNAME=//p' "$here/../.env" | tail -n 1)
fi
: "${MQTT_HOSTNAME:?set MQTT_HOSTNAME (the name in the broker's certificate) or put it in deploy/.env}"

if [ "$chown_files" = 1 ] && [ "$(id -u)" != 0 ]; then
    echo "run as root (sudo): files are given to the uids of the containers that read them," >&2
    echo "or pass --no-chown and give them yourself (secrets/README.md)" >&2
    exit 1
fi

# Container users (numeric: the host may not know them). With userns-remap or rootless
# Docker, add the subordinate uid offset.
POSTGRES_UID=70     # timescale/timescaledb (Alpine's postgres)
GRAFANA_UID=472     # grafana/grafana
MOSQUITTO_UID=1883  # deploy/compose/mosquitto/Dockerfile

umask 077
mkdir -p "$dir"

# 24 random bytes as 48 hex digits: nothing to escape in a URL, a pgpass line or a shell.
random_hex() {
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# A secret written once and never replaced: the database and the broker hold it afterwards.
once() {
    if [ ! -s "$dir/$1" ]; then
        random_hex "$2" > "$dir/$1"
        echo "generated $1"
    fi
}

value() {
    cat "$dir/$1"
}

# give FILE MODE [UID]: the file's mode, and its owner when chowning.
give() {
    chmod "$2" "$dir/$1"
    if [ "$chown_files" = 1 ] && [ -n "${3:-}" ]; then
        chown "$3:$3" "$dir/$1"
    fi
}

for name in postgres_password db_owner_password db_sink_password db_worker_password \
    db_registry_password db_clinic_password grafana_admin_password mqtt_admin_password \
    mqtt_gateway_1_password mqtt_gateway_2_password; do
    once "$name" 24
done
# HMAC key of the patient pseudonyms (48 bytes; `veille doctor` wants 32 at least). Keep a
# copy in the vault: changing it changes every pseudonym.
once pseudonym_key 48

database() {  # database ROLE PASSWORD_FILE
    echo "postgresql://$1:$(value "$2")@timescaledb:5432/veille"
}

# One env file per component, each holding that component's secrets only (Veille reads its
# settings from the environment; compose.yaml's env_file entries name these files).
write_env() {  # write_env FILE LINE...
    file=$1
    shift
    printf '%s\n' "# written by generate-secrets.sh from the password files beside it" "$@" \
        > "$dir/$file"
    give "$file" 600
}
write_env migrate.env "VEILLE_DATABASE_URL=$(database veille db_owner_password)"
write_env worker.env "VEILLE_WORKER_DATABASE_URL=$(database veille_worker db_worker_password)"
write_env sink.env "VEILLE_SINK_DATABASE_URL=$(database veille_sink db_sink_password)"
write_env clinic.env "VEILLE_CLINIC_DATABASE_URL=$(database veille_clinic db_clinic_password)"
write_env webhooks.env \
    "VEILLE_REGISTRY_DATABASE_URL=$(database veille_registry db_registry_password)"
for n in 1 2; do
    write_env "gateway-$n.env" \
        "VEILLE_MQTT_URL=mqtts://veille-gateway-$n:$(value "mqtt_gateway_${n}_password")@$MQTT_HOSTNAME:8883"
done
write_env operator.env \
    "VEILLE_REGISTRY_DATABASE_URL=$(database veille_registry db_registry_password)" \
    "VEILLE_MQTT_ADMIN_URL=mqtts://veille-admin:$(value mqtt_admin_password)@$MQTT_HOSTNAME:8883" \
    "VEILLE_PSEUDONYM_KEY=$(value pseudonym_key)"

# Compose mounts these files as they are on the host (bind mounts keep owner and mode).
give postgres_password 400
for role in owner sink worker registry clinic; do
    give "db_${role}_password" 400 "$POSTGRES_UID"
done
give grafana_admin_password 400 "$GRAFANA_UID"
for name in mqtt_admin_password mqtt_gateway_1_password mqtt_gateway_2_password pseudonym_key; do
    give "$name" 600
done

missing=""
for name in mqtt_ca.crt broker.crt broker.key; do
    if [ -s "$dir/$name" ]; then
        case $name in
            broker.key) give "$name" 400 "$MOSQUITTO_UID" ;;
            *) give "$name" 444 ;;
        esac
    else
        missing="$missing $name"
    fi
done
if [ -n "$missing" ]; then
    echo "still to copy from the hospital's PKI into $dir:$missing (then run this again)"
fi
echo "secrets in $dir"
