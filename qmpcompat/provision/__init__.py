"""Getting QEMU: the Debian archive's builds (no root) and binaries the user names."""

from qmpcompat.provision.build import QemuBuild, build_from_path
from qmpcompat.provision.debian import DEFAULT_SUITES, ProvisionResult, cache_dir, provision

__all__ = ["DEFAULT_SUITES", "ProvisionResult", "QemuBuild", "build_from_path", "cache_dir",
           "provision"]
