# Sourced by the CLI tests that talk to `rvec serve`: start_server RVEC MODEL [ARGS...] starts it
# on a free port with --json, waits for the startup line and sets $server_pid and $url; the EXIT
# trap stops it; stop_server sends SIGTERM and fails unless it exits 0. Needs fail() defined.
server_pid=""
url=""
cleanup_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2> /dev/null; then
    kill -TERM "$server_pid" 2> /dev/null || true
    wait "$server_pid" 2> /dev/null || true
  fi
}
trap cleanup_server EXIT

start_server() {
  local rvec="$1" model="$2"
  shift 2
  "$rvec" serve "$model" --port 0 --json "$@" > server.out 2> server.err &
  server_pid=$!
  for _ in $(seq 1 300); do
    [ -s server.out ] && break
    kill -0 "$server_pid" 2> /dev/null || fail "rvec serve exited before serving"
    sleep 0.1
  done
  url=$(python3 -c 'import json; print(json.loads(open("server.out").readline())["url"])') ||
    fail "no --json startup line: $(cat server.out)"
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || fail "rvec serve did not exit 0 on SIGTERM"
  server_pid=""
}
