"""Untrusted text on its way to a person: the control characters no terminal, chat or page may obey.

One pattern for every surface: C0 and C1 controls (escape sequences start with them; newline and
tab are kept) and the invisible formatting characters (zero-width marks, bidi overrides and
isolates) that make text read differently from what it is.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
