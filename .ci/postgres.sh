#!/usr/bin/env bash
# Start this machine's PostgreSQL, make a throwaway test database, print its DSN.
#
#   dsn="$(bash .ci/postgres.sh)"
#   export INCIDENTFLOW_TEST_POSTGRES_DSN="$dsn"
#
# Only the DSN goes to stdout; everything else goes to stderr. Safe to run again:
# the cluster is started only if it is down, the role made only if missing, and
# the database dropped and made anew. When the server packages are missing
# (pg_ctlcluster absent) they are installed with apt-get (CI runs as root).
# Settings: INCIDENTFLOW_TEST_DB (database name, default incidentflow_test).
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

database="${INCIDENTFLOW_TEST_DB:-incidentflow_test}"
[[ "$database" =~ ^[a-z_][a-z0-9_]*$ ]] || die "INCIDENTFLOW_TEST_DB must be a plain name, got '$database'"

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "PostgreSQL is not installed; installing it with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
    fi
    command -v pg_ctlcluster >/dev/null 2>&1 ||
        die "PostgreSQL is not installed (no pg_ctlcluster); install it: apt-get install postgresql"
fi

# The newest installed server version, and its first cluster (made if there is none).
version="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)"
[[ -n "$version" ]] || die "no PostgreSQL server under /usr/lib/postgresql"
cluster="$(pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v { print $2; exit }')"
if [[ -z "$cluster" ]]; then
    cluster=main
    log "creating cluster $version/$cluster"
    pg_createcluster "$version" "$cluster" >&2
fi
read -r port status < <(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3, $4 }')
if [[ "$status" != online* ]]; then
    log "starting cluster $version/$cluster on port $port"
    pg_ctlcluster "$version" "$cluster" start >&2 || die "cannot start PostgreSQL $version/$cluster (see /var/log/postgresql/)"
fi

as_postgres() {
    if [[ "$(id -un)" == postgres ]]; then "$@"
    elif [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"
    else sudo -n -u postgres "$@"
    fi
}

socket_dir="$(as_postgres psql -X -p "$port" -tAc "SHOW unix_socket_directories" | cut -d, -f1 | xargs)"
[[ -n "$socket_dir" ]] || socket_dir=/var/run/postgresql
for _ in $(seq 1 60); do
    pg_isready -q -h "$socket_dir" -p "$port" && break
    sleep 0.5
done
pg_isready -q -h "$socket_dir" -p "$port" || die "PostgreSQL did not accept connections on $socket_dir port $port"

user="$(id -un)"
if [[ "$user" != postgres ]]; then
    exists="$(as_postgres psql -X -p "$port" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$user'")"
    if [[ "$exists" != 1 ]]; then
        log "creating the role $user"
        as_postgres createuser -p "$port" --superuser "$user" >&2
    fi
fi

log "making the database $database anew"
dropdb -h "$socket_dir" -p "$port" --if-exists --force "$database" >&2
createdb -h "$socket_dir" -p "$port" "$database" >&2

dsn="postgresql:///$database?host=$(printf %s "$socket_dir" | sed 's|/|%2F|g')&port=$port"
log "PostgreSQL $version ready: $dsn"
echo "$dsn"
