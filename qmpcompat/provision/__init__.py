"""Getting QEMU: the Debian archive's builds (no root; ``apt``, ``indexes``,
``debian``), builds from source (``source_tree``, ``source_build``) and binaries
the user names (``build``). Starts no QEMU: which builds a run uses, checked to
start, is ``qmpcompat.selection``."""

from qmpcompat.provision.build import QemuBuild, build_from_path
from qmpcompat.provision.debian import DEFAULT_SUITES, ProvisionResult, cache_dir, provision

__all__ = ["DEFAULT_SUITES", "ProvisionResult", "QemuBuild", "build_from_path", "cache_dir",
           "provision"]
