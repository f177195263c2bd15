"""The Telegram bot: `app` (the job), `actions` (what it can do), `replies` (how it reads on a phone),
`notifier` (alerts, at least once), `skills` (learned skills on disk), `improve` (`bot improve`)."""
