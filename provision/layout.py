"""Where the factory lives on a host: one place for every path the deploy writes."""

from __future__ import annotations

from pathlib import Path

from factoryctl.core.paths import Paths

USER = "factory"  # the services' user: never root
GROUP = "factory"
HOME = "/home/factory"
FACTORY_HOME = f"{HOME}/factory"
PATHS = Paths(Path(FACTORY_HOME))  # the runtime's own names for what is under FACTORY_HOME
PM2_HOME = f"{HOME}/.pm2"
# What the factory's processes create (job logs, PM2's log files, the event log) is its user's
# alone: read by its group at most, never by others. factory-run, cron, PM2 and its unit use it.
UMASK = "027"

# The runtime is installed by root into its own venv: the agents (user factory) cannot change it.
OPT = "/opt/factory"
VENV = f"{OPT}/venv"
WHEELS = f"{OPT}/wheels"
INSTALLED_MARKER = f"{VENV}/.factory-wheel.sha256"  # the sha256 of the wheel installed last
BIN = f"{OPT}/bin"
RUN = f"{BIN}/factory-run"  # runs a command with FACTORY_HOME, PATH and the secrets
TMUX = f"{BIN}/factory-tmux"  # the tmux layout: one session per agent
FACTORYCTL = f"{VENV}/bin/factoryctl"
SCRIPTED_AGENT = f"{VENV}/bin/factory-scripted-agent"
PATH = f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin"

SKILLS_SRC = f"{OPT}/skills"  # the repository's starting skills; seeded into FACTORY_HOME/skills once each
SKILLS_DIR = str(PATHS.skills_dir)

# The demo: the bundled sample repository and the scripted agent's scenarios.
SAMPLE_SRC = f"{OPT}/sample-repo"
SAMPLE_ORIGIN = f"{HOME}/sample-origin.git"  # stands in for the shared remote
GATE_KEY = str(PATHS.gate_key_file)  # the merge gate's key: a local origin's update hook asks for it
DEMO_DIR = f"{FACTORY_HOME}/demo"

ECOSYSTEM = f"{FACTORY_HOME}/ecosystem.config.js"
DEPLOY_KEY = f"{HOME}/.ssh/factory_deploy_key"
CRON_FILE = "/etc/cron.d/factory"
LOGROTATE_FILE = "/etc/logrotate.d/factory"
PM2_UNIT = "pm2-factory.service"
PM2_UNIT_FILE = f"/etc/systemd/system/{PM2_UNIT}"

SECRETS_FILE = str(PATHS.secrets_file)
CONFIG_FILE = str(PATHS.config_file)
LOGS_DIR = str(PATHS.logs_dir)
LOCKS_DIR = str(PATHS.locks_dir)
STATE_DIR = str(PATHS.state_dir)

# Several hosts (a fleet): PostgreSQL on the gate, a relay to it on each worker, our nftables table.
DB_NAME = "factory"  # the database and its role
DB_ROLE = "factory"
PG_PORT = 5432
PG_SOCKET_DIR = "/run/postgresql"  # the gate's own jobs connect here
RELAY_USER = "factory-db"  # a worker's relay runs as it: the only user that may open TCP to 5432 there
RELAY_UNIT = "factory-db-relay.service"
RELAY_UNIT_FILE = f"/etc/systemd/system/{RELAY_UNIT}"
RELAY_DIR = "/run/factory-db"  # a worker's jobs connect to the relay's socket here
NFT_FILE = "/etc/factory/nftables.nft"  # `table inet factory`, loaded by its own unit
NFT_UNIT = "factory-nftables.service"
NFT_UNIT_FILE = f"/etc/systemd/system/{NFT_UNIT}"
PG_CONF_NAME = "factory.conf"  # the gate's drop-in under /etc/postgresql/VERSION/main/conf.d/
# PostgreSQL starts once the network is up: it binds the private address, which a VPS provider's
# private network may bring up late in the boot (else it would listen on localhost only).
PG_UNIT_DROPIN = "/etc/systemd/system/postgresql@.service.d/factory-network.conf"
PG_UNIT_DROPIN_TEXT = "[Unit]\nWants=network-online.target\nAfter=network-online.target\n"
AUTHORIZED_KEYS = f"{HOME}/.ssh/authorized_keys"  # the gate: the workers fetch the demo's origin over ssh
