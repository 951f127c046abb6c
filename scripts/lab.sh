#!/usr/bin/env bash
# Start JupyterLab on notebooks/. `qwen-nb where notebooks` reads the same settings chain the
# kernels will (environment, the nearest .env from notebooks/ up, the user config file) and says
# whether the notebooks call Model Studio (billed) or need the local emulator; then the emulator
# is started (when needed) and checked before JupyterLab. Stopping this script (Ctrl-C, or a
# TERM/HUP to it) stops everything it started.
set -euo pipefail
port="${1:-8765}"
bin=.venv/bin
log=.venv/emulator.log
pids=()

stop_all() {
  for pid in "${pids[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

set +e
where=$($bin/qwen-nb where notebooks)
rc=$?
set -e
case $rc in
  0)
    echo "qwen-nb: $where"
    echo "Notebooks will call Model Studio; their calls are billed to these workspaces."
    ;;
  3)
    echo "qwen-nb: $where"
    if ! $bin/python -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null; then
      echo "make lab: port $port is already in use, so the emulator cannot start there." >&2
      echo "  Stop what holds it (e.g. an earlier 'make lab' or 'make emulator'), or pick another: make lab PORT=8766" >&2
      exit 1
    fi
    echo "Starting the local Model Studio emulator on port $port (log: $log)."
    $bin/qwen-nb emulator --port "$port" >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 150); do   # up to 30 s
      if grep -q "Model Studio emulator on" "$log" 2>/dev/null; then break; fi
      if ! kill -0 "${pids[0]}" 2>/dev/null; then
        echo "make lab: the emulator did not start:" >&2
        sed 's/^/  /' "$log" >&2
        exit 1
      fi
      sleep 0.2
    done
    if ! grep -q "Model Studio emulator on" "$log"; then
      echo "make lab: the emulator gave no sign of life in 30 s (see $log)." >&2
      exit 1
    fi
    export QWEN_NB_EMULATOR="http://127.0.0.1:$port"
    echo "Notebooks will run against it (no network, no cost)."
    ;;
  *)
    echo "make lab: qwen-nb cannot read the settings; fix them first (see above)." >&2
    exit 1
    ;;
esac
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)   # containers and CI machines often run as root
# shellcheck disable=SC2086  # LAB_ARGS is a list of options
$bin/jupyter lab --notebook-dir=notebooks "${extra[@]}" ${LAB_ARGS:-} &
pids+=($!)
wait "${pids[-1]}"
