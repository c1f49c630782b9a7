"""The subcommands of ``qmpcompat``, one module per job, each with
``register(subparsers)`` that adds its subcommands and sets ``func`` (args ->
exit status) on each; ``qmpcompat.cli`` lists them explicitly.

``selection`` declares the binary-selection options (``--qemu``, ``--suites``,
``--only``) once for every command that selects QEMU builds. Command modules
parse arguments and print; the work is done by the packages below them.
"""
