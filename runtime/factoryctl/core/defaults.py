"""Every constant of the runtime that is not a configuration key, in one place.

Configuration keys and their defaults live in `config.py` (`factoryctl config show
--defaults`); these are the fixed limits, timeouts and names behind them.
"""

from __future__ import annotations

from datetime import timedelta

# -- environment -------------------------------------------------------------------
HOME_ENV = "FACTORY_HOME"  # one variable moves all state
TMUX_SOCKET_ENV = "FACTORY_TMUX_SOCKET"  # a private tmux server (tests)
# Secrets: scrubbed from every event; the agent never receives the bot or HTTP tokens.
SECRET_ENV = (
    "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "TELEGRAM_BOT_TOKEN", "FACTORY_HTTP_TOKEN", "FACTORY_GITHUB_SECRET",
    "ANTHROPIC_AUTH_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
    "FACTORY_DB_PASSWORD",
)  # fmt: skip
# The factory's own files (the event log, job logs, state): its user reads and writes them, its group
# reads them, nobody else (they hold task titles, reasons, agent output).
PRIVATE_FILE_MODE = 0o640
WITHHELD_ENV = ("TELEGRAM_BOT_TOKEN", "FACTORY_HTTP_TOKEN", "FACTORY_GITHUB_SECRET")
# The model's credential: the agent and the reviewer get it, setup and checks never do.
MODEL_CREDENTIAL_ENV = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN")
# How Claude Code reaches its model, passed to the agent and the reviewer with the credential:
# a gateway (ANTHROPIC_BASE_URL), Amazon Bedrock, Google Vertex AI, model pins, retries, a proxy.
MODEL_ENV = (
    "ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "CLAUDE_CODE_USE_BEDROCK", "ANTHROPIC_BEDROCK_BASE_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX", "ANTHROPIC_VERTEX_PROJECT_ID", "ANTHROPIC_VERTEX_BASE_URL", "CLOUD_ML_REGION",
    "GOOGLE_APPLICATION_CREDENTIALS", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "CLAUDE_CODE_MAX_RETRIES",
    "API_TIMEOUT_MS", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
)  # fmt: skip
# What every sandboxed call's environment may hold (plus sandbox.pass_env); HOME is its cache.
SANDBOX_PASS_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "USER", "LOGNAME", "NODE_EXTRA_CA_CERTS")
# What repo.setup also gets (it alone has the network): where the certificate authorities are (a
# proxy's own CA), the proxies, and the package indexes a machine is configured to use.
SETUP_PASS_ENV = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "UV_NATIVE_TLS",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "NPM_CONFIG_REGISTRY",
    "npm_config_registry", "UV_PYTHON",
)  # fmt: skip
SANDBOX_PROBE_TIMEOUT_S = 20.0
# Every sandboxed call: no user site-packages (a plugin planted under ~/.local never loads).
SANDBOX_SET_ENV = {"PYTHONNOUSERSITE": "1"}
# What running the code leaves behind, never part of a change (every worktree's exclude list,
# whatever the repository's .gitignore says): bytecode, test and tool caches, coverage data.
BYPRODUCTS = (
    "__pycache__/", "*.py[cod]", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".hypothesis/", ".tox/", ".nox/",
    ".coverage", ".coverage.*", "coverage.xml", "htmlcov/", ".nyc_output/", "*.tsbuildinfo", ".eslintcache",
    ".vite/", ".vitest/", ".turbo/", ".cache/",
)  # fmt: skip

# -- subprocesses ------------------------------------------------------------------
MAX_CAPTURE_BYTES = 8 * 1024 * 1024  # a process printing garbage forever cannot eat the RAM
PIPE_GRACE_S = 1.0  # after the main process exits, how long a child may hold its pipes
KILL_GRACE_S = 2.0  # between SIGTERM and SIGKILL when killing a group
GIT_TIMEOUT_S = 300.0
TMUX_TIMEOUT_S = 10.0
PM2_TIMEOUT_S = 30.0
HEAVY_WAIT_S = 6 * 3600.0  # how long a check or a setup may wait for a heavy slot

# -- state ---------------------------------------------------------------------------
LOG_READ_BLOCK = 64 * 1024  # the log is read from its end in blocks of this size
ALERT_QUIET = timedelta(hours=1)  # an alert key is not repeated within this
SCHEDULER_HEARTBEAT = timedelta(hours=1)  # a `scheduler` event at least this often
TASK_MAX_TITLE = 200
TASK_MAX_BODY = 20_000
NOTE_CHARS = 160  # a crashed check's one-line note
JUNIT_MAX_BYTES = 32 * 1024 * 1024  # a bigger test report is not trusted
JUNIT_MAX_TESTS = 200_000
LOST_TESTS_SHOWN = 5  # test names named in a reason
STRAYS_SHOWN = 3  # files a check left behind, named in its note

# -- loops ---------------------------------------------------------------------------
PAUSE_POLL_S = 10.0  # how often a paused loop looks again
# A running loop refreshes its heartbeat this often, whatever it does (a cycle, a wait): the gate
# takes a session whose heartbeat is older than `[fleet] lost_after_s` (120 s) for lost.
HEARTBEAT_S = 30.0
# The shared state's unix socket folders: the gate's PostgreSQL, a worker's relay to it (the
# deploy creates them). Hidden from every sandboxed call: an agent never reaches the state.
STATE_SOCKET_DIRS = ("/run/postgresql", "/run/factory-db")
OUTAGE_BACKOFF_MAX_S = 30.0  # a loop or scheduler waiting for the shared state tries again at most this far apart
BRANCH_NAME_POLL_S = 0.2  # a second cycle within one UTC second waits for the next

# -- prompts (characters, or events for RECENT) ------------------------------------
PROMPT_BUDGET_CONTEXT = 16_000
PROMPT_BUDGET_SKILLS = 8_000
PROMPT_BUDGET_RECENT = 30
PROMPT_BUDGET_TASK_BODY = 6_000
PROMPT_REJECTIONS = 5  # the reviewer's last rejections of this session shown to it

REVIEW_FAILURES = 2  # a branch whose review failed this often (not decided: crashed) is rejected

# -- the gate ------------------------------------------------------------------------
# What decides how a change is judged, or what gets installed: a change to these waits for a person.
# One table, by the tool that reads each name for configuration or plugins, following the tool's own
# discovery rules (tests/integration/test_sensitive_discovery.py runs each tool to show it reads them).
# A name without '/' matches in any folder; a glob with '/' matches the whole path.
SENSITIVE_BY_TOOL: dict[str, tuple[str, ...]] = {
    "pytest": ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg",
               "conftest.py"),
    "python": ("sitecustomize.py", "usercustomize.py", "*.pth", "setup.py", "pyproject.toml"),
    "mypy": ("mypy.ini", ".mypy.ini", "pyproject.toml", "setup.cfg"),
    "ruff": ("ruff.toml", ".ruff.toml", "pyproject.toml"),
    "coverage": (".coveragerc",),
    "tox/nox": ("tox.ini", "noxfile.py"),
    "pip/uv/poetry": ("requirements*.txt", "constraints*.txt", "uv.lock", "uv.toml", "poetry.lock", "Pipfile",
                      "Pipfile.lock", "pip.conf", ".python-version"),
    "tsc": ("tsconfig*.json", "jsconfig*.json"),
    "vitest": ("vitest.config.*", "vitest.workspace.*", "vite.config.*"),
    "jest": ("jest.config.*", "babel.config.*", ".babelrc*"),
    "eslint": ("eslint.config.*", ".eslintrc*", ".eslintignore"),
    "npm/pnpm/yarn": ("package.json", "package-lock.json", "npm-shrinkwrap.json", ".npmrc", "pnpm-lock.yaml",
                      "pnpm-workspace.yaml", ".pnpmfile.cjs", ".pnpmfile.mjs", "yarn.lock", ".yarnrc*", ".yarn/*",
                      ".pnp.*"),
    "ci": ("Makefile", ".pre-commit-config.yaml", ".circleci/*", "Jenkinsfile", "azure-pipelines.yml"),
    # The agent's own settings and instructions: hooks run with the model credential, text steers every
    # later call (repo.context_files are added to these).
    "agent": (".claude/*", "*/.claude/*", "CLAUDE.md", "CLAUDE.local.md", "AGENTS.md", ".mcp.json", ".codex/*"),
}  # fmt: skip
SENSITIVE_PATHS = tuple(dict.fromkeys(name for names in SENSITIVE_BY_TOOL.values() for name in names))
# pyproject.toml tables that change how checks run or what gets installed as a command or plugin
# ([project.entry-points.pytest11] loads a pytest plugin; [project.scripts] may install a `pytest`).
PYPROJECT_SENSITIVE_KEYS = ("tool", "build-system", "project.entry-points", "project.scripts", "project.gui-scripts")
# package.json keys that change how checks run (the rest, dependencies included, is not sensitive by itself).
PACKAGE_JSON_SENSITIVE_KEYS = ("scripts", "jest", "vitest", "eslintConfig", "mocha", "ava", "c8", "nyc", "type",
                               "packageManager", "pnpm", "imports", "bin")  # fmt: skip

# -- HTTP (factoryctl serve) ---------------------------------------------------------
HTTP_TOKEN_ENV = "FACTORY_HTTP_TOKEN"  # bearer token; without it `serve` refuses to start
GITHUB_SECRET_ENV = "FACTORY_GITHUB_SECRET"  # the webhook's HMAC secret; unset: no webhook
HTTP_MAX_BODY = 64 * 1024  # bytes; a larger request body gets 413
WEBHOOK_DELIVERY_TTL = timedelta(days=3)  # a GitHub delivery id is remembered this long (GitHub retries for 3 days)
WEBHOOK_DELIVERIES_KEPT = 10_000  # ... and at most this many of them (the oldest forgotten first)
WEBHOOK_DELIVERY_ID_CHARS = 100  # a longer X-GitHub-Delivery is not an id GitHub sends
HTTP_MIN_TOKEN = 16  # characters: a shorter token is refused at start
HTTP_EVENTS_LIMIT = 1000  # the most events /api/events returns
TRIGGER_JOB_TIMEOUT_S = 6 * 3600.0  # a triggered review/standup/doctor is killed after this
PAGE_REFRESH_S = 30
PAGE_DAYS = 14  # days on the status page's plots
PAGE_HOURS = 24  # hours on the cycles-per-hour plot

# -- Telegram bot ----------------------------------------------------------------------
TELEGRAM_LIMIT = 4096  # characters in one message; neither Telegram nor the library splits
BOT_TEXT_CHARS = 1000  # a chat message longer than this is cut before it is matched or recorded
BOT_LOG_MAX = 200  # /log n: at most this many events
BOT_SEND_TRIES = 3  # a notice that fails this often becomes an `alert_undelivered` event
BOT_SEND_BACKOFF_S = 0.5  # doubled after each failed try
BOT_READ_BYTES = 1024 * 1024  # the notifier reads at most this much new log per poll
BOT_STOP_GRACE_S = 10.0  # on SIGTERM a background job may finish its pass this long (PM2 waits 30 s)
BOT_LANDINGS_DAYS = 7  # /status looks this far back for the last landings
BOT_SKILL_MAX = 50  # learned bot skills kept at most
BOT_SKILL_PATTERN_CHARS = 300
BOT_SKILL_TEMPLATE_CHARS = 2000
BOT_SKILL_DESCRIPTION_CHARS = 500
BOT_IMPROVE_MESSAGES = 200  # unhandled messages shown to the model per run, newest
BOT_IMPROVE_LOOKBACK_DAYS = 30  # how far back `bot improve` looks for its last run

# -- evidence: what a check said, kept with its counts (adapters/evidence.py) --------
EVIDENCE_LINES = 8  # lines per check run
EVIDENCE_LINE_CHARS = 240
PROMPT_EVIDENCE_CHARS = 4_000  # evidence shown in one prompt, all checks together
