"""Writing and merging what runs found: ``results`` (results.json), ``summary``,
``html``, ``junit``, ``render`` (all of them from one results document, written
by ``files``), ``merge``, ``progress``, ``crashes``, ``matrix`` (the
cross-version table), ``history`` (the schema history a report shows), and the
behaviour changes between builds (``changes``, ``change_rules``,
``changes_out``)."""
