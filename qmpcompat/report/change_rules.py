"""The behaviour-change rules: stable ids, levels and what each means.

Separate from the comparison (``changes.py``), like the schema differ's
rules: a change is first described (what BASE did, what NEW did), then a rule
gives it a level. ``breaking``: a client that worked with BASE fails with NEW
(a rejection where there was none, another error class, a migration that no
longer completes, a new crash or hang). ``warning``: a client may notice
(other error text, a case gone, a crash that changed its signature).
``info``: compatible (something newly accepted, a crash gone, a new case).
The consumer rules compare what a consumer profile's migration did on each
build (and from BASE to NEW, when the run has that cell).
"""

from __future__ import annotations

BEHAVIOUR_RULES: dict[str, tuple[str, str]] = {
    "NEWLY_REJECTED": ("breaking", "BASE accepted the command; NEW rejects it, so callers that relied on"
                                   " it break"),
    "NEWLY_ACCEPTED": ("info", "NEW accepts what BASE rejected: compatible for callers, though a"
                              " check that relied on the rejection no longer holds"),
    "ERROR_CLASS_CHANGED": ("breaking", "the error class changed: clients dispatch on it"),
    "ERROR_TEXT_CHANGED": ("warning", "the error text changed: clients should not parse it, but"
                                      " management tools show it and some match on it"),
    "MIGRATION_NOW_FAILS": ("breaking", "a migration BASE completed no longer completes"),
    "MIGRATION_NOW_COMPLETES": ("info", "a migration BASE did not complete now completes"),
    "MIGRATION_END_CHANGED": ("warning", "the accepted migration ends in another state"),
    "MIGRATION_ERROR_CHANGED": ("info", "the migration fails as before, with another error text"),
    "NEW_CRASH": ("breaking", "NEW crashes where BASE did not: a QMP command kills the VM"),
    "NEW_HANG": ("breaking", "NEW stops answering where BASE did not"),
    "CRASH_CHANGED": ("warning", "both crash or hang, but otherwise (another signal or message)"),
    "CRASH_GONE": ("info", "BASE crashed or hung here; NEW does not"),
    "CASE_ADDED": ("info", "a case only NEW runs (its schema gained what the case needs)"),
    "CASE_REMOVED": ("warning", "a case only BASE runs (NEW's schema lost what the case needs;"
                                " the schema differ says what)"),
    "CONSUMER_BROKEN": ("breaking", "a consumer profile (libvirt, Proxmox, ...) migrated a guest with BASE"
                                    " and does not with NEW, or from BASE to NEW: QEMU refuses one of its"
                                    " steps, the migration fails, or QEMU crashes or hangs"),
    "CONSUMER_FIXED": ("info", "a consumer profile that did not migrate a guest with BASE does with NEW"),
    "CONSUMER_CHANGED": ("warning", "a consumer profile fails with BASE and with NEW, but otherwise"
                                    " (another step, answer or end)"),
    "SETUP_CHANGED": ("warning", "the harness could set the case up on one build and not on the"
                                 " other"),
}
