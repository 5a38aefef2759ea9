#!/usr/bin/env python3
"""Splits what each case adds to the heap by the part of govfusion that holds it.

Input: two folded-stack files of the same build, from runs that differ only in the number of
cases (`heaptrack_print -f FILE.zst --flamegraph-cost-type leaked -F OUT` after
`govfusion bench --resident --cases N --exit-holding`, see the README's "Performance"), and the
difference in cases between the two runs. Each stack's bytes go to the first holder below whose
rule matches the stack's innermost frames in this repository's source files (names shared with
the libraries excluded, as in `peak_by_source.py`); the rest to "other". Prints, per holder, the
bytes the larger run held more, divided by the difference in cases: approximate, as a rule names
the code that allocated, not the structure that keeps it.

Usage: scripts/heap_by_holder.py SMALL LARGE CASES_BETWEEN [repository root, default .]
"""
import collections
import pathlib
import re
import sys

from peak_by_source import SHARED

# (holder, files, how many innermost frames of ours to look at, or a function name to find
# anywhere in the stack). The first match wins, so the narrower rules come first.
RULES = [
    ("the intake system's record of each case, made at submission", None, 0, "register"),
    ("the intake system's view of each case (history, events)",
     {"observe.rs", "view.rs", "events.rs"}, 3, None),
    ("audit records held by the bus", {"trail.rs"}, 99, None),
    ("departments' case records and pending collaborations",
     {"flow.rs", "pending.rs", "decision.rs"}, 3, None),
    ("handled-message records (processed.rs)", {"processed.rs"}, 2, None),
    ("the centres' routing", {"routing.rs", "state.rs", "returns.rs"}, 3, None),
    ("the idempotency store", {"store.rs"}, 2, None),
    ("the rate limiter", {"rate_limit.rs"}, 3, None),
    ("envelopes decoded and kept", {"envelope.rs", "consume.rs"}, 4, None),
    ("payloads decoded and kept", {"payloads.rs", "sealed.rs", "messages.rs"}, 4, None),
]


def ours_of(root: pathlib.Path) -> set:
    return {p.name for p in (root / "src").rglob("*.rs")} - SHARED


def holder(frames: list) -> str:
    for name, files, depth, function in RULES:
        if function is not None:
            if any(f.startswith(function) for f, _ in frames):
                return name
        elif any(source in files for _, source in frames[-depth:]):
            return name
    return "other"


def load(folded: str, ours: set) -> collections.Counter:
    by_holder = collections.Counter()
    for line in open(folded, errors="replace"):
        stack, _, cost = line.rstrip("\n").rpartition(" ")
        if not cost.isdigit():
            continue
        frames = []
        for frame in stack.split(";"):
            match = re.match(r"(.*) \(([^()]*\.rs)\)$", frame)
            if match and match.group(2) in ours:
                frames.append((match.group(1), match.group(2)))
        by_holder[holder(frames) if frames else "other"] += int(cost)
    return by_holder


def main() -> None:
    small, large, cases = sys.argv[1], sys.argv[2], int(sys.argv[3])
    root = pathlib.Path(sys.argv[4] if len(sys.argv) > 4 else ".")
    ours = ours_of(root)
    before, after = load(small, ours), load(large, ours)
    rows = sorted(((after[k] - before[k]) / cases, k) for k in set(before) | set(after))
    for per_case, name in reversed(rows):
        print(f"{per_case:8.0f} B  {name}")
    print(f"{sum(r[0] for r in rows):8.0f} B  in all, a case")


if __name__ == "__main__":
    main()
