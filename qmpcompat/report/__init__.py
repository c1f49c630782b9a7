"""Writing and merging what runs found: ``results`` (results.json), ``summary``,
``html``, ``junit``, ``render`` (all of them from one results document),
``merge``, ``progress``, ``crashes``, and the behaviour changes between builds
(``changes``, ``change_rules``, ``changes_out``)."""
