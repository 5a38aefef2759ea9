#!/usr/bin/env python3
"""How much coalesced checkpoints could save (issue 15, item 3): reads a state topic, counts
each system's snapshots a case and their size, and, for windows of several lengths, how many
snapshots would be left if each system wrote at most one snapshot of a case per window (the
first snapshot opening the window; later ones within it merged into one). The gaps come from
the records' timestamps, as the producer stamped them.

It measures; it asserts nothing. Usage, after a `govfusion simulate` on Kafka:

    scripts/snapshot_gaps.py [bootstrap] [topic]     # default: 127.0.0.1:9092 govfusion.state
"""
import bisect
import collections
import json
import sys
import uuid

from confluent_kafka import Consumer, TopicPartition

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "govfusion.state"
WINDOWS_MS = [10, 50, 100, 200, 500, 1000]


def main():
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": "snapshot-gaps-" + uuid.uuid4().hex[:8],
            "enable.auto.commit": False,
        }
    )
    partitions = consumer.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in partitions])
    times = collections.defaultdict(list)  # (system, case) -> timestamps
    count, size, cases = collections.Counter(), collections.Counter(), set()
    idle = 0
    while idle < 5:
        message = consumer.poll(1.0)
        if message is None:
            idle += 1
            continue
        if message.error():
            continue
        envelope = json.loads(message.value())
        kind = envelope["source"].split("/")[0]
        count[kind] += 1
        size[kind] += len(message.value())
        cases.add(envelope["case_id"])
        times[(kind, envelope["source"], envelope["case_id"])].append(message.timestamp()[1])
    consumer.close()
    print(f"{sum(count.values())} snapshots of {len(cases)} cases on {TOPIC}")
    for kind in sorted(count):
        print(f"  {kind}: {count[kind] / len(cases):.2f} a case, {size[kind] // count[kind]} bytes each")
    for kind in sorted(count):
        series = [sorted(t) for (k, _, _), t in times.items() if k == kind]
        gaps = sorted(b - a for t in series for a, b in zip(t, t[1:]))
        total = sum(len(t) for t in series)
        print(f"{kind}: {len(gaps)} gaps between two snapshots of a case")
        for window in WINDOWS_MS:
            left = sum(windows(t, window) for t in series)
            within = bisect.bisect_right(gaps, window)
            print(
                f"  window {window:>5} ms: {within} gaps within it; "
                f"{left} of {total} snapshots left ({1 - left / total:.0%} fewer)"
            )


def windows(stamps, window):
    """Snapshots left of one case at one system: one per window, each opened by the first
    snapshot after the previous window closed."""
    left, opened = 0, None
    for stamp in stamps:
        if opened is None or stamp - opened > window:
            left, opened = left + 1, stamp
    return left


if __name__ == "__main__":
    main()
