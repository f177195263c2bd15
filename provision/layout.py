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
