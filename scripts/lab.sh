#!/usr/bin/env bash
# Start JupyterLab on notebooks/. With no DASHSCOPE_API_KEY (in the environment or .env),
# start the local Model Studio emulator first and point the notebooks at it.
set -euo pipefail
port="${1:-8765}"
bin=.venv/bin
has_key=$($bin/python - <<'PY'
import os
from dotenv import dotenv_values
print("yes" if (os.environ.get("DASHSCOPE_API_KEY") or dotenv_values(".env").get("DASHSCOPE_API_KEY")) else "no")
PY
)
if [ "$has_key" = "no" ]; then
  echo "No DASHSCOPE_API_KEY set: starting the local Model Studio emulator on port $port."
  echo "Notebooks will run against it (no network, no cost). Set DASHSCOPE_API_KEY to use the real service."
  $bin/qwen-nb emulator --port "$port" &
  emu=$!
  trap 'kill $emu 2>/dev/null || true' EXIT
  export QWEN_NB_EMULATOR="http://127.0.0.1:$port"
fi
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)   # containers and CI machines often run as root
$bin/jupyter lab --notebook-dir=notebooks "${extra[@]}" ${LAB_ARGS:-}
