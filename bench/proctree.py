"""Run a command and measure its wall time and the peak RSS of its whole process tree.

Linux only: every `interval` seconds a thread lists the child's descendants through
/proc/<pid>/task/<tid>/children (falling back to scanning /proc/*/stat for parent ids)
and sums their VmRSS. The peak of that sum is `peak_rss_tree_bytes`: sampled, so a spike
shorter than the interval can be missed, and pages shared between processes are counted
once per process. `max_rss_single_bytes` is the kernel's ru_maxrss from wait4: the largest
RSS any single process of the tree reached (exact, but not a sum).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

PAGE_KB = 1024


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


def tree_rss_bytes(pid: int) -> int:
    """Sum of VmRSS over pid and its descendants."""
    return sum(rss_bytes(p) for p in descendants(pid))


def run_measured(command: list[str], *, env: dict | None = None, cwd: str | Path | None = None,
                 log_path: Path | None = None, interval: float = 0.1) -> dict:
    """Run `command`, return wall_s, returncode, peak_rss_tree_bytes, max_rss_single_bytes.

    stdout and stderr go to `log_path` (or are discarded). Never raises on a non-zero exit:
    the caller decides.
    """
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss_bytes(process.pid))
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
    return {
        "wall_s": wall,
        "returncode": process.returncode,
        "peak_rss_tree_bytes": peak,
        "max_rss_single_bytes": usage.ru_maxrss * 1024,
    }
