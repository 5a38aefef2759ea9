#!/usr/bin/env python3
"""Splits a heap profile's peak by the source file of govfusion that allocated it.

Input: the folded stacks `heaptrack_print -f FILE.zst --flamegraph-cost-type peak -F OUT`
writes. Each stack's bytes at the peak go to the innermost frame in one of this repository's
source files (`src/**.rs`, names shared with the libraries excluded); stacks with none go to
their innermost C frame (librdkafka, SQLite) or to "other". Prints the 40 largest, in MB.

Usage: scripts/peak_by_source.py OUT [repository root, default .]
"""
import collections
import pathlib
import re
import sys

# File names that libraries (std, serde, actix, tokio) use too: a frame in one of them is not
# known to be ours.
SHARED = {
    "mod.rs", "lib.rs", "main.rs", "tests.rs", "error.rs", "server.rs", "config.rs", "de.rs",
    "ser.rs", "read.rs", "raw.rs", "impls.rs", "alloc.rs", "boxed.rs", "string.rs", "slice.rs",
    "entry.rs", "node.rs", "fmt.rs", "str.rs", "option.rs", "result.rs", "function.rs", "map.rs",
    "set.rs", "value.rs", "future.rs", "task.rs", "sync.rs", "convert.rs", "iter.rs", "time.rs",
    "log.rs", "span.rs", "service.rs", "client.rs",
}

# C allocation functions: the frame that called one of them names the site.
C_ALLOCATORS = ("rd_malloc", "rd_calloc", "rd_realloc", "rd_strdup", "malloc", "calloc",
                "realloc", "sqlite3Malloc", "sqlite3MemMalloc", "mallocWithAlarm", "__GI_")


def main() -> None:
    folded = sys.argv[1]
    root = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else ".")
    ours = {p.name for p in (root / "src").rglob("*.rs")} - SHARED
    by_site = collections.Counter()
    total = 0
    for line in open(folded, errors="replace"):
        stack, _, cost = line.rstrip("\n").rpartition(" ")
        if not cost.isdigit():
            continue
        total += int(cost)
        frames = stack.split(";")
        site = None
        for frame in reversed(frames):
            found = re.search(r"\(([^()]+\.rs)\)$", frame)
            if found and found.group(1) in ours:
                site = frame[:140]
                break
        if site is None:
            c_frames = [
                f for f in frames if ".c)" in f and not f.startswith(C_ALLOCATORS)
            ]
            site = "C: " + c_frames[-1][:60] if c_frames else "other"
        by_site[site] += int(cost)
    print(f"{total / 1e6:8.2f} MB at the peak")
    for site, cost in by_site.most_common(40):
        print(f"{cost / 1e6:8.2f} MB  {site}")


if __name__ == "__main__":
    main()
