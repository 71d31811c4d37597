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
MQ_CONF=$(mktemp -d)/mosquitto.conf
printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n' > "$MQ_CONF"
pkill -x mosquitto 2>/dev/null || true
/usr/sbin/mosquitto -c "$MQ_CONF" -d
export WARDSIGHT_MQTT_URL="mqtt://127.0.0.1:1883"
export WARDSIGHT_MOSQUITTO_BIN=/usr/sbin/mosquitto

