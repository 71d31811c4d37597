# Start PostgreSQL and Mosquitto on loopback and export their URLs. Sourced by .ci/run; developers
# can `source .ci/services.sh` to run the integration tests locally (as root, Debian packages).
echo "== PostgreSQL on 127.0.0.1:5432"
PGVER=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$PGVER main"; then pg_createcluster "$PGVER" main >/dev/null; fi
pg_ctlcluster "$PGVER" main start 2>/dev/null || true
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
su postgres -c "psql -q -c \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='wardsight') THEN CREATE ROLE wardsight LOGIN PASSWORD 'wardsight' CREATEDB; END IF; END\\\$\\\$;\""
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='wardsight_test'\" | grep -q 1 || createdb -O wardsight wardsight_test"
export WARDSIGHT_PG_URL="postgresql+psycopg://wardsight:wardsight@127.0.0.1:5432/wardsight_test"

echo "== Mosquitto on 127.0.0.1:1883"
# Reuse a broker already listening (another shell, another checkout); never kill someone else's.
# setsid: the broker must outlive the shell that sourced this file.
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  MQ_DIR=$(mktemp -d)
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n' > "$MQ_DIR/mosquitto.conf"
  setsid /usr/sbin/mosquitto -c "$MQ_DIR/mosquitto.conf" >"$MQ_DIR/mosquitto.log" 2>&1 < /dev/null &
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.2; done
fi
export WARDSIGHT_MQTT_URL="mqtt://127.0.0.1:1883"
export WARDSIGHT_MOSQUITTO_BIN=/usr/sbin/mosquitto

