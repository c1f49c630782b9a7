"""The schema differ: ``diff`` (structural changes between two normalized
models), ``rules`` (the rule table with stable ids and levels that classifies
them), ``compare`` (pairs and histories of inputs), ``ignore`` (accepted
changes with reasons), ``gate`` (a build against the committed baselines),
``report`` (text, JSON, Markdown and HTML from one list of findings) and
``locate`` (the QAPI source line a finding points at); the history:
``timeline`` (every known release, in order), ``deprecations`` (what QEMU's
documents say), ``since`` (the ``Since:`` audit) and ``timeline_out``."""
