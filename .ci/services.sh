#!/usr/bin/env bash
# Debian packages the tests use: a PostgreSQL server and HAProxy (fleet tests), Chromium (browser
# demo) and espeak-ng (speech for test media).
# Prints the PostgreSQL URL for the tests (INTER1SRV_TEST_PG_URL).
set -euo pipefail
need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v haproxy >/dev/null || need+=(haproxy)
command -v chromium >/dev/null || need+=(chromium)     # the browser demo's end-to-end test
command -v espeak-ng >/dev/null || need+=(espeak-ng)   # real synthesized speech for test media
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need[@]}" >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qtAc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='inter1srv') THEN CREATE ROLE inter1srv LOGIN PASSWORD 'inter1srv' CREATEDB; END IF; END \\\$\\\$;\"" >&2
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='inter1srv_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O inter1srv inter1srv_test" >&2
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
echo "postgresql://inter1srv:inter1srv@127.0.0.1:${port}/inter1srv_test"
