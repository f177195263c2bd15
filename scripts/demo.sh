#!/usr/bin/env bash
# The main job, end to end. The sandbox-VPS demo (pyinfra deploying the whole factory onto
# a throwaway Debian host) arrives with the provisioning work; until then this runs the
# runtime locally on a throwaway FACTORY_HOME with the scripted agent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BIN="$PWD/.venv/bin"
export FACTORY_HOME="${FACTORY_HOME:-$(mktemp -d /tmp/factory-demo.XXXXXX)/factory}"
mkdir -p "$FACTORY_HOME"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "NOTE: the sandbox VPS demo is not built yet (provisioning, issue 5); this is the local runtime demo"
cat >"$FACTORY_HOME/scenario.json" <<'JSON'
{"repeat": true, "calls": [{"actions": [{"write": "NOTES.md", "content": "demo call {n}\n"}],
  "result": "wrote NOTES.md", "cost_usd": 0.03, "num_turns": 2}]}
JSON
cat >"$FACTORY_HOME/factory.toml" <<TOML
[factory]
sessions = 3
[agent]
command = ["$BIN/factory-scripted-agent", "--scenario", "$FACTORY_HOME/scenario.json"]
timeout_s = 60
TOML

say "factoryctl config show"
"$BIN/factoryctl" config show
say "queue three tasks"
"$BIN/factoryctl" task add "Fix the flaky login test" --priority high
"$BIN/factoryctl" task add "Add a --json flag to export" --body "scripts want it"
"$BIN/factoryctl" task add "Tidy the README" --priority low
"$BIN/factoryctl" task list
say "one agent call through the adapter (the scripted agent stands in for the model)"
mkdir -p "$FACTORY_HOME/scratch"
"$BIN/python" - <<'PY'
from pathlib import Path
from factoryctl.context import Context
ctx = Context.load()
res = ctx.agent().call("demo prompt", cwd=ctx.paths.home / "scratch", session="s1", purpose="demo")
print(f"agent call: {res.outcome.value} ({res.reason}), cost ${res.cost_usd:.2f}, {res.num_turns} turns")
PY
say "factoryctl status"
"$BIN/factoryctl" status
say "factoryctl log tail"
"$BIN/factoryctl" log tail -n 10
say "done. Look around with: FACTORY_HOME=$FACTORY_HOME $BIN/factoryctl --help ; remove it with: rm -r $(dirname "$FACTORY_HOME")"
