#!/usr/bin/env bash
# Install everything the factory's tests and demo need on a fresh Debian machine:
# apt packages (as root), global npm tools, the sample projects' node_modules, the venv.
# Safe to run again: each step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# postgresql: the state contract tests start a real server of their own (the cluster is not used).
APT_PACKAGES=(git tmux nodejs npm debootstrap systemd-container zstd nftables iproute2 openssh-client bubblewrap chromium postgresql)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  # A machine with its own node and npm keeps them: Debian's are only for one without.
  case "$pkg" in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing apt packages: ${missing[*]} (run this script as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# "command package" pairs: install the package when the command is missing.
# pnpm: the TypeScript pnpm sample (tests/samples/ts-pnpm) and `factoryctl init` on pnpm projects.
for pair in "pm2 pm2@7.0.4" "claude @anthropic-ai/claude-code" "pnpm pnpm@12.4.2"; do
  read -r bin pkg <<<"$pair"
  if ! command -v "$bin" >/dev/null; then
    say "npm install -g $pkg"
    npm install -g --no-fund --no-audit "$pkg" >/dev/null
  fi
done

if [ -f tests/samples/ts-app/package-lock.json ] && [ ! -d tests/samples/ts-app/node_modules ]; then
  say "npm ci (tests/samples/ts-app)"
  npm ci --prefix tests/samples/ts-app --no-fund --no-audit >/dev/null
fi

if [ -f tests/samples/ts-pnpm/pnpm-lock.yaml ] && [ ! -d tests/samples/ts-pnpm/node_modules ]; then
  # Also fills pnpm's store, so the factories the tests make install this lockfile without the network.
  say "pnpm install --frozen-lockfile (tests/samples/ts-pnpm)"
  (cd tests/samples/ts-pnpm && pnpm install --frozen-lockfile --reporter=silent)
fi

if [ ! -x .venv/bin/python ]; then
  say "python3 -m venv .venv"
  python3 -m venv .venv
fi
say "pip install -e .[dev,deploy]"
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev,deploy]' 2>&1 | grep -v "^WARNING: Location" || true

# uv: the uv sample (tests/samples/uv-app) and `factoryctl init` on uv projects. In the venv, whose
# folder the sandbox shows read-only (the runtime's own Python), so sandboxed setup finds it.
if [ ! -x .venv/bin/uv ]; then
  say "pip install uv"
  .venv/bin/pip install -q --disable-pip-version-check uv 2>&1 | grep -v "^WARNING: Location" || true
fi
