"""Run a command and measure its wall time, CPU time and the peak RSS of its process tree.

Linux only: every `interval` seconds a thread lists the child's descendants through
/proc/<pid>/task/<tid>/children (falling back to scanning /proc/*/stat for parent ids)
and sums their VmRSS. The peak of that sum is `peak_rss_tree_bytes`: sampled, so a spike
shorter than the interval can be missed, and pages shared between processes are counted
once per process. `max_rss_single_bytes` is the kernel's ru_maxrss from wait4: the largest
RSS any single process of the tree reached (exact, but not a sum). `cpu_s` is user + system
time: wait4's figure for the command and every descendant it waited for (exact), or the
sampled sum over the tree when that is larger (a child nobody waited for, such as Spark's
JVM, is missing from wait4's). With `cpu_timeline`, the sampler also writes one line per
sample, "POSIX seconds, tree CPU seconds so far", for attributing CPU to the nodes of a
build (bench.results.node_cpu).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

PAGE_KB = 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    task_dir = Path(f"/proc/{pid}/task")
    children: list[int] = []
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            return _children_by_scan(pid)
    return children


def _children_by_scan(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the ")" that closes the command name.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """pid and every process below it (a snapshot; processes may come and go)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process in bytes, 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * PAGE_KB
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system seconds of one process and its waited-for children, 0 when gone."""
    try:
        # utime, stime, cutime, cstime are fields 14-17; the command name may hold spaces.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(tick) for tick in fields[11:15]) / CLOCK_TICKS


def run_measured(command: list[str], *, env: dict | None = None, cwd: str | Path | None = None,
                 log_path: Path | None = None, interval: float = 0.1,
                 cpu_timeline: Path | None = None) -> dict:
    """Run `command`, return wall_s, cpu_s, returncode, peak_rss_tree_bytes,
    max_rss_single_bytes.

    stdout and stderr go to `log_path` (or are discarded). Never raises on a non-zero exit:
    the caller decides.
    """
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    timeline = open(cpu_timeline, "w") if cpu_timeline else None
    try:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT)
        peak = 0
        sampled_cpu = 0.0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, sampled_cpu
            while not done.is_set():
                tree = descendants(process.pid)
                peak = max(peak, sum(rss_bytes(p) for p in tree))
                cpu = sum(cpu_seconds(p) for p in tree)
                sampled_cpu = max(sampled_cpu, cpu)
                if timeline:
                    timeline.write(f"{time.time():.2f} {cpu:.2f}\n")
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log_path:
            out.close()
        if timeline:
            timeline.close()
    return {
        "wall_s": wall,
        "cpu_s": max(usage.ru_utime + usage.ru_stime, sampled_cpu),
        "returncode": process.returncode,
        "peak_rss_tree_bytes": peak,
        "max_rss_single_bytes": usage.ru_maxrss * 1024,
    }
