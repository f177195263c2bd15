#!/usr/bin/env bash
# The main job, end to end: a throwaway Debian 12 "VPS" on this machine (the sandbox host:
# systemd-nspawn in its own network namespace), the whole factory deployed onto it with
# pyinfra (PM2, cron, tmux sessions, the runtime, a bundled sample repository), and the real
# Claude Code CLI doing every agent and reviewer call against a local stand-in of the Anthropic
# Messages API (no model service is reachable here): then it shows the factory at work.
# Run as root on Debian 12. Tear down with: .venv/bin/python -m sandbox down
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
if [ "$(id -u)" -ne 0 ]; then
  echo "Error: the sandbox host needs root (network namespaces, systemd-nspawn): run sudo bash scripts/demo.sh" >&2
  exit 1
fi

bash scripts/setup.sh
PY=.venv/bin/python
# The HTTP triggers and status page are deployed only with a token: the demo makes one.
export FACTORY_HTTP_TOKEN="${FACTORY_HTTP_TOKEN:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')}"
on_host() { "$PY" -m sandbox ssh -- "$@"; }
as_factory() { on_host sudo -u factory -H -- "$@"; }

say "bring up the sandbox host (the first run bakes its image with debootstrap: about a minute)"
if ! "$PY" -m sandbox status --json 2>/dev/null | grep -q '"state": "running"'; then
  "$PY" -m sandbox up
fi

say "a local stand-in for Telegram's Bot API on the host (no Telegram is reachable from here)"
BOT_TOKEN="4242:demo-token-not-a-secret"  # the stand-in's, for the demo only
"$PY" -m sandbox ssh -- "cat > /root/telegram_standin.py" <tests/support/telegram_standin.py
on_host "pgrep -f '^python3 /root/telegram_standin.py --port' >/dev/null || setsid -f python3 /root/telegram_standin.py \
  --port 8081 --token $BOT_TOKEN </dev/null >/root/telegram-standin.log 2>&1"
export TELEGRAM_BOT_TOKEN="$BOT_TOKEN"
BOT_DATA=(--data "factory_telegram_chat_ids=[111]" --data 'factory_config={"cycle": {"interval_s": 20},
  "telegram": {"api_url": "http://127.0.0.1:8081", "notify_poll_s": 2}}')
standin_say() { on_host "python3 /root/telegram_standin.py --port 8081 --token $BOT_TOKEN --say '$1'"; }

say "a local stand-in for the Anthropic Messages API on the host: the real Claude Code runs against it"
# Its plays are the demo's scenarios (templates/demo), carried out by Claude Code's own tools.
"$PY" -m tests.support.plays templates/demo/agent.json templates/demo/reviewer.json \
  | "$PY" -m sandbox ssh -- "cat > /root/demo-plays.json"
"$PY" -m sandbox ssh -- "cat > /root/messages_standin.py" <tests/support/messages_standin.py
on_host "pkill -f '^python3 /root/messages_standin.py --port' ; setsid -f python3 /root/messages_standin.py \
  --port 8082 --script /root/demo-plays.json --log /root/messages-standin.log </dev/null >/root/messages-standin.err 2>&1"
# What a user sets for a model gateway (README: "Claude Code as you run it"); the key is the stand-in's.
export ANTHROPIC_BASE_URL=http://127.0.0.1:8082 ANTHROPIC_API_KEY="sk-ant-demo-not-a-secret"
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 CLAUDE_CODE_MAX_RETRIES=1
CLAUDE_DATA=(--data "factory_agent_command=$("$PY" -c 'import inventory, json; print(json.dumps(inventory.DEFAULTS["factory_agent_command"]))')"
  --data "factory_reviewer_command=$("$PY" -c 'import inventory, json; print(json.dumps(inventory.DEFAULTS["factory_reviewer_command"]))')")
BOT_DATA+=("${CLAUDE_DATA[@]}")

DEMO_START=$(on_host date -u +%Y-%m-%dT%H:%M:%S)   # this run's cycles are the ones after it

say "pyinfra inventory.py deploy.py --dry   (the plan; changes nothing)"
.venv/bin/pyinfra inventory.py deploy.py "${BOT_DATA[@]}" --dry 2>&1 | tail -n 12

say "pyinfra inventory.py deploy.py -y   (the deploy)"
.venv/bin/pyinfra inventory.py deploy.py "${BOT_DATA[@]}" -y 2>&1 | tail -n 8

say "PM2, cron and the agents' tmux sessions on the host"
as_factory pm2 ls || true
on_host cat /etc/cron.d/factory
as_factory factoryctl sessions list || true   # the factory's own tmux server (a socket per FACTORY_HOME)

say "waiting for the agents' first cycles (a cycle every 20 s for the tour; 15 min by default)"
# Each agent writes a note, then its view of notes/shared.md: the two views conflict at the review.
for _ in $(seq 1 60); do
  pushed=$(as_factory factoryctl log tail -n 200 --type ralph_cycle --since "$DEMO_START" --json \
    | grep -c '"verdict": "pushed"' || true)
  [ "$pushed" -ge 4 ] && break
  sleep 3
done
as_factory factoryctl log tail -n 6 --type ralph_cycle

say "what an agent's tmux pane shows: Claude Code's tool calls as it makes them, then the verdict"
SOCKET=$(as_factory factoryctl sessions list --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["attach"].split()[2])')
as_factory tmux -L "$SOCKET" capture-pane -p -t factory-s1 | grep -v '^$' | tail -n 12 || true

say "the merge gate: factoryctl review (cron runs it every 2 hours): the notes land; on a fresh host, two sessions' shared plans conflict and one is rejected"
as_factory factoryctl review || true
as_factory factoryctl queue list --all | tail -n 8 || true

say "the standup: factoryctl standup (cron, every 2 hours): three rounds, then the summary"
as_factory factoryctl standup || true   # prints the summary as plain text (the transcript is Markdown)

say "the session doctor: factoryctl doctor (cron, every 3 hours): each session's state"
as_factory factoryctl doctor || true

say "factoryctl status"
as_factory factoryctl status

say "the status page, through an ssh port forward from the sandbox host"
SSH_CONFIG=$("$PY" -m sandbox status --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["ssh_config"])')
SANDBOX="${FACTORY_SANDBOX_NAME:-sandbox}"
PAGE_PORT=18787
mkdir -p demo-output
# A forward left by an earlier run of this script: stop it by its pid.
[ -f demo-output/forward.pid ] && kill "$(cat demo-output/forward.pid)" 2>/dev/null || true
ssh -F "$SSH_CONFIG" -N -L "127.0.0.1:$PAGE_PORT:127.0.0.1:8787" -o ExitOnForwardFailure=yes "$SANDBOX" &
echo $! > demo-output/forward.pid
for _ in $(seq 1 30); do
  "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PAGE_PORT/healthz', timeout=2)" 2>/dev/null && break
  sleep 1
done
"$PY" -m tests.browser "http://127.0.0.1:$PAGE_PORT/" demo-output/status-page.png
echo "status page: http://127.0.0.1:$PAGE_PORT/   (sign in with FACTORY_HTTP_TOKEN=$FACTORY_HTTP_TOKEN)"
echo "screenshot:  demo-output/status-page.png   (the forward runs as pid $(cat demo-output/forward.pid))"

say "the Telegram bot (factory-bot under PM2), through the stand-in: /status, then /task"
standin_say "/status" || true
standin_say "/task Add a CSV export of the stock list" || true

say "the figures: factoryctl report --since 24h"
as_factory factoryctl report --since 24h

cat <<TXT

The factory is running on the sandbox host. Look around:
  $PY -m sandbox ssh                                   # a root shell on the host
  $PY -m sandbox ssh -- sudo -u factory -H factoryctl log tail --follow
  $PY -m sandbox ssh -- sudo -u factory -H factoryctl sessions attach s1   (Ctrl-b d to leave)
  $PY -m sandbox ssh -- sudo -u factory -H factoryctl queue list --all
Tear it down (removes every mount, namespace and process it made):
  $PY -m sandbox down
TXT
