"""The one error hierarchy of qmpcompat.

Every error carries the facts as attributes and a message that says what to
do; the CLI and the pytest plugin print ``str(err)`` and never a traceback.
"""

from __future__ import annotations


class QmpCompatError(Exception):
    """Base class of every error qmpcompat raises on purpose."""

    hint: str = ""

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class DataFileRefused(OSError):
    """A data file qmpcompat was given is a symbolic link, a special file (FIFO,
    device, socket, directory) or too large; ``filename`` names it and
    ``strerror`` says which. An ``OSError``, so every loader reports it where it
    reports a file it cannot read (``qmpcompat.datafile``)."""


# --- provisioning -----------------------------------------------------------


class ProvisionError(QmpCompatError):
    """Getting a QEMU build failed."""


class AptError(ProvisionError):
    """An apt step failed; ``command`` and ``output`` say which and why."""

    def __init__(self, message: str, command: list[str] | None = None, output: str = "") -> None:
        super().__init__(message)
        self.command = command or []
        self.output = output


class UnknownSuiteError(ProvisionError):
    """A Debian suite is not served by the archive (or has no qemu-system-x86)."""

    def __init__(self, suite: str) -> None:
        super().__init__(f"Debian suite {suite!r} does not exist or serves no qemu-system-x86")
        self.suite = suite
        self.hint = ("use a suite the Debian archive serves, e.g. bookworm, bookworm-backports, "
                     "trixie, trixie-backports, forky, sid")


class BinaryError(ProvisionError):
    """A binary named by the user cannot be used as a QEMU."""

    def __init__(self, path: str, reason: str, hint: str = "") -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.hint = hint


# --- driving QEMU -----------------------------------------------------------


class QemuError(QmpCompatError):
    """A QEMU process misbehaved; ``stderr_tail`` holds the end of its stderr."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        text = super().__str__()
        if self.stderr_tail:
            text += "\n  stderr: " + self.stderr_tail.strip().replace("\n", "\n          ")
        return text


class QemuDied(QemuError):
    """QEMU exited; ``returncode`` is its exit status, ``signal`` the signal that killed it."""

    def __init__(self, what: str, returncode: int, stderr_tail: str = "") -> None:
        self.returncode = returncode
        self.signal = -returncode if returncode < 0 else None
        how = f"killed by signal {self.signal}" if self.signal else f"exited with status {returncode}"
        super().__init__(f"QEMU {how} {what}", stderr_tail)


class QemuHung(QemuError):
    """QEMU did not answer within ``timeout`` seconds and was killed."""

    def __init__(self, what: str, timeout: float, stderr_tail: str = "") -> None:
        self.timeout = timeout
        super().__init__(f"QEMU did not answer within {timeout:g}s {what}; it was killed", stderr_tail)


ENVIRONMENT_ERROR = "environment error, not a QEMU defect"  # how an EnvironmentFault reads


class EnvironmentFault(QemuError):
    """QEMU died of its environment, not of a defect of its own: a module of another
    build, a module or firmware file it could not find (``cause`` says which;
    ``returncode`` as ``QemuDied``'s). Reported as an environment error, never as
    a QEMU crash."""

    def __init__(self, what: str, returncode: int, cause: str, stderr_tail: str = "") -> None:
        self.returncode = returncode
        self.cause = cause
        super().__init__(f"{ENVIRONMENT_ERROR}: {cause}; QEMU exited "
                         f"(status {returncode}) {what}", stderr_tail)
        self.hint = ("the build reached outside what was provisioned for it: run "
                     "`qmpcompat provision` again and read its self-check (README, "
                     "'Which QEMU binaries')")


class ForkServerUnavailable(QemuError):
    """QEMUs of a build cannot be forked from a fork server (``reason`` says why:
    no C compiler, a binary the preloaded library cannot join, a server that
    stopped answering); the caller starts them by exec instead."""

    def __init__(self, reason: str, stderr_tail: str = "") -> None:
        self.reason = reason
        super().__init__(f"no fork server: {reason}", stderr_tail)


class UnsafeInput(QmpCompatError):
    """The safety gate refused what a case would make QEMU do; ``problems`` says why."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.what = what
        self.problems = problems
        super().__init__(f"refused by the safety gate ({what}): " + "; ".join(problems))
        self.hint = ("only loopback, the case's own directory and the harness's sink commands "
                     "are allowed (see vectors/README.md, Safety rules)")


# --- vectors ----------------------------------------------------------------


class VectorError(QmpCompatError):
    """A vector file or vector is malformed; ``file``, ``line`` and ``vector_id`` locate it."""

    def __init__(self, message: str, file: str = "", line: int | None = None,
                 vector_id: str | None = None) -> None:
        self.file = file
        self.line = line
        self.vector_id = vector_id
        where = file + (f":{line}" if line else "") if file else ""
        prefix = ": ".join(p for p in (where, vector_id or "") if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.message = message


# --- schemas ----------------------------------------------------------------


class SchemaError(QmpCompatError):
    """A schema input cannot be read, parsed or queried."""

    def __init__(self, message: str, source: str = "", line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = source + (f":{line}" if line else "")
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message


class SourceUnavailable(SchemaError):
    """The Debian archive lists no such source package, or serves none of its files."""


class ReportError(QmpCompatError):
    """A results file cannot be read or merged."""


class ReproducerError(QmpCompatError):
    """A known defect's standalone reproducer cannot be made; ``defect`` names it."""

    def __init__(self, defect: str, message: str, hint: str = "") -> None:
        self.defect = defect
        super().__init__(f"{defect}: {message}")
        self.hint = hint
