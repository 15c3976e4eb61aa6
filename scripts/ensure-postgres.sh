#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:${PGPORT:-5432} with the test role and
# database. Installs Debian's postgresql package when no server is installed. Idempotent.
set -euo pipefail
PGPORT=${PGPORT:-5432}
DB_USER=${TEST_PG_USER:-dataplatform}
DB_PASS=${TEST_PG_PASSWORD:-dataplatform}
DB_NAME=${TEST_PG_DB:-dataplatform_test}

as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else sudo -u postgres sh -c "$*"; fi; }

if ! pg_isready -q -h 127.0.0.1 -p "$PGPORT" 2>/dev/null; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "ensure-postgres: installing PostgreSQL from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
  if ! pg_lsclusters -h | grep -q .; then
    ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    pg_createcluster "$ver" main --port "$PGPORT" >/dev/null
  fi
  read -r ver name _ < <(pg_lsclusters -h | head -n1)
  pg_ctlcluster "$ver" "$name" start >&2 || true   # its notes (e.g. "Removed stale pid file.") must not join the URL on stdout
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p "$PGPORT" >&2 || { echo "ensure-postgres: PostgreSQL did not start" >&2; exit 1; }
fi

as_postgres "psql -p $PGPORT -tAc \"SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'\"" | grep -q 1 \
  || as_postgres "psql -p $PGPORT -qc \"CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASS'\""
as_postgres "psql -p $PGPORT -tAc \"SELECT 1 FROM pg_database WHERE datname='$DB_NAME'\"" | grep -q 1 \
  || as_postgres "createdb -p $PGPORT -O $DB_USER $DB_NAME"
echo "postgresql+psycopg://$DB_USER:$DB_PASS@127.0.0.1:$PGPORT/$DB_NAME"
