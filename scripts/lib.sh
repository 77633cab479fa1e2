# Shared settings and helpers for the local-stack scripts. Sourced, not run.
# Every setting can be overridden from the environment.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AV_HOME="${AV_HOME:-$ROOT/.stack}"
export AV_PORT="${AV_PORT:-8080}"
export AV_GATEWAY_PORT="${AV_GATEWAY_PORT:-8081}"
export AV_QUERY_PORT="${AV_QUERY_PORT:-8082}"
export AV_WRITER_PORT="${AV_WRITER_PORT:-8083}"
export AV_REDIS_PORT="${AV_REDIS_PORT:-6379}"
export AV_PG_PORT="${AV_PG_PORT:-5432}"
export AV_CH_HTTP_PORT="${AV_CH_HTTP_PORT:-18123}"
export AV_CH_TCP_PORT="${AV_CH_TCP_PORT:-19000}"
export AV_BROKER_PORT="${AV_BROKER_PORT:-19092}"
export AV_SMTP_PORT="${AV_SMTP_PORT:-2525}"
export AV_SMTP_HOST="${AV_SMTP_HOST:-127.0.0.1}"
export AV_REDIS_URL="${AV_REDIS_URL:-redis://127.0.0.1:$AV_REDIS_PORT/0}"
export AV_DATABASE_URL="${AV_DATABASE_URL:-postgres://postgres@127.0.0.1:$AV_PG_PORT/agentvista}"
export AV_CLICKHOUSE_URL="${AV_CLICKHOUSE_URL:-http://127.0.0.1:$AV_CH_HTTP_PORT}"
export AV_CLICKHOUSE_DATABASE="${AV_CLICKHOUSE_DATABASE:-agentvista}"
export AV_KAFKA_BROKERS="${AV_KAFKA_BROKERS:-127.0.0.1:$AV_BROKER_PORT}"
export AV_KAFKA_TOPIC="${AV_KAFKA_TOPIC:-av.ingest.v1}"
export AV_KAFKA_PARTITIONS="${AV_KAFKA_PARTITIONS:-4}"
export AV_GATEWAY_LISTEN="${AV_GATEWAY_LISTEN:-127.0.0.1:$AV_GATEWAY_PORT}"
export AV_QUERY_LISTEN="${AV_QUERY_LISTEN:-127.0.0.1:$AV_QUERY_PORT}"
export AV_WRITER_LISTEN="${AV_WRITER_LISTEN:-127.0.0.1:$AV_WRITER_PORT}"
VENV="$AV_HOME/venv"
LOGS="$AV_HOME/logs"
RUN="$AV_HOME/run"
mkdir -p "$AV_HOME" "$LOGS" "$RUN"

say() { printf '\033[1m==>\033[0m [%4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  die "$3 did not open port $1 within $2 s (logs: $LOGS)"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

apt_updated=""
apt_install() { # packages...
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt)"
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The local broker: av-broker (broker/), built by scripts/infra; or a
# prebuilt one named by AV_BROKER_BIN.
broker_bin() {
  echo "${AV_BROKER_BIN:-$ROOT/target/release/av-broker}"
}
