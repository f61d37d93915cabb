"""Names that break naive code generators: keywords, the generated class's own member names,
spaces, quotes, backslashes, leading digits, non-ASCII and mixed case. The code generator's
tests and its formatting property draw machine names from them."""

from __future__ import annotations

import keyword

AWKWARD_NAMES = [
    *sorted(keyword.kwlist)[:12],
    "None",
    "self",
    "fire",
    "state",
    "transition",
    "allowed_events",
    "is_final",
    "State",
    "Event",
    "new job",
    "job-done",
    "continue_work",
    "no_jobs",
    "naïve état",
    "Über-Zustand",
    "日本語",
    "Ελληνικά",
    "don't stop",
    'say "hi"',
    'it\'s "quoted"',
    "back\\slash",
    "2nd try",
    "camelCaseName",
    "HTTPServer",
    "timeout(5)",
    "timeout(0.5)",
    "multi\nline",
    "tab\there",
    'x"""y',
    "z'); import os; ('",
    "{{ 7 * 7 }}",
    "{% raw %}",
    "# not a comment",
    "a # b",
    "wait…",
]
