"""How many CPUs this process may really use.

``os.cpu_count()`` is the machine's count: under ``taskset`` or a container's CPU limit (a Kubernetes pod with
``limits.cpu: 4`` on a 64-core node) thread pools sized from it oversubscribe the CPUs they get by many times
(``anpr read`` pinned to one core ran 2.4x slower with a thread per machine core). joblib's (loky's) count takes
the process's CPU affinity and the cgroup CPU quota (v1 and v2) into account.
"""

from __future__ import annotations

from joblib import cpu_count


def usable_cpus() -> int:
    """The CPUs this process may use: the least of the machine's count, its affinity and its cgroup quota."""
    return max(1, int(cpu_count(only_physical_cores=False)))
