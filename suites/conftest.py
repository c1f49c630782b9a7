"""The conformance suites: the qmpcompat pytest plugin (an installed entry
point) does the work; this file only switches it on for runs of this directory."""

QMPCOMPAT_SUITE = True
