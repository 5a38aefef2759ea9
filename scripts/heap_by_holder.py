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

# (holder, files, how many innermost frames of ours to look at, functions): a stack belongs to
# the holder when one of those frames is in one of the files and, if functions are named, is one
# of them; with no files, when a named function is anywhere in the stack. The first match wins,
# so the narrower rules come first. Several files share a name across systems (`observe.rs`,
# `state.rs`), so their functions tell the systems apart.
RULES = [
    ("the intake system's record of each case, made at submission", None, 0, {"register"}),
    ("ids read from the wire, shared by text, and the table that shares them (interned.rs)",
     {"interned.rs"}, 1, None),
    ("the supervision system's watch of each case",
     {"observe.rs", "records.rs"}, 3,
     {"apply", "learn_case", "learn_dispatch", "slot", "case_mut", "assignment_mut",
      "latest_assignment_mut"}),
    ("the intake system's view of each case (history, events)",
     {"observe.rs", "view.rs", "events.rs"}, 3, None),
    ("audit records held by the bus", {"trail.rs"}, 99, None),
    ("departments' case records and pending collaborations",
     {"flow.rs", "pending.rs", "decision.rs"}, 3, None),
    ("departments' case records and pending collaborations", {"state.rs"}, 3, {"add_step"}),
    ("handled-message records (processed.rs)", {"processed.rs"}, 2, None),
    ("the centres' routing", {"routing.rs", "state.rs", "returns.rs"}, 3, None),
    ("the idempotency store", {"store.rs"}, 2, None),
    ("the rate limiter", {"rate_limit.rs"}, 3, None),
    ("envelopes decoded and kept", {"envelope.rs", "consume.rs"}, 4, None),
    ("payloads decoded and kept", {"payloads.rs", "sealed.rs", "messages.rs"}, 4, None),
]


def named(frame: str, functions) -> bool:
    """Whether `frame` is one of `functions` (a frame reads `name` or `name<…>`)."""
    return functions is None or frame.split("<")[0] in functions


def ours_of(root: pathlib.Path) -> set:
    return {p.name for p in (root / "src").rglob("*.rs")} - SHARED


def holder(frames: list) -> str:
    for name, files, depth, functions in RULES:
        if files is None:
            if any(named(f, functions) for f, _ in frames):
                return name
        elif any(source in files and named(f, functions) for f, source in frames[-depth:]):
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
