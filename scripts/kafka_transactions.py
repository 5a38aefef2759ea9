#!/usr/bin/env python3
"""Whether a Kafka-protocol broker supports what snapshots committed in Kafka transactions
would need (issue 15, item 3): a transactional producer that commits, aborts and commits
consumer offsets within a transaction, and `read_committed` consumers that do not see what was
aborted. Uses confluent-kafka (librdkafka, as the service does).

It measures; it asserts nothing. Usage, against a broker already listening:

    scripts/kafka_transactions.py [bootstrap]     # default: 127.0.0.1:9092

It prints each step's outcome and what each isolation level reads back: `committed`, then
`aborted` only under `read_uncommitted` when the broker keeps transactions apart.
"""
import sys
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
TOPIC = "transactions-probe-" + uuid.uuid4().hex[:8]


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for created in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
        created.result()
    producer = Producer(
        {"bootstrap.servers": BOOTSTRAP, "transactional.id": "probe-" + TOPIC}
    )
    group = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "probe-" + TOPIC})
    steps = [
        ("init_transactions", lambda: producer.init_transactions(10)),
        ("commit a record", lambda: commit(producer, b"committed")),
        ("abort a record", lambda: abort(producer, b"aborted")),
        ("commit offsets in a transaction", lambda: offsets(producer, group)),
    ]
    for name, step in steps:
        try:
            step()
            print(f"{name}: ok")
        except KafkaException as error:
            print(f"{name}: FAILED {error.args[0]}")
            break
    for isolation in ("read_committed", "read_uncommitted"):
        print(f"{isolation} reads: {read(isolation)}")
    print(f"the group's committed offset: {group.committed([TopicPartition(TOPIC, 0)], timeout=5)[0].offset}")


def commit(producer, value):
    producer.begin_transaction()
    producer.produce(TOPIC, value)
    producer.commit_transaction(10)


def abort(producer, value):
    producer.begin_transaction()
    producer.produce(TOPIC, value)
    producer.flush(10)
    producer.abort_transaction(10)


def offsets(producer, group):
    producer.begin_transaction()
    producer.produce(TOPIC, b"committed with offsets")
    producer.send_offsets_to_transaction(
        [TopicPartition(TOPIC, 0, 1)], group.consumer_group_metadata(), 10
    )
    producer.commit_transaction(10)


def read(isolation):
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"probe-{isolation}-{TOPIC}",
            "isolation.level": isolation,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    values = []
    for _ in range(5):
        message = consumer.poll(1)
        if message is not None and not message.error():
            values.append(message.value().decode())
    consumer.close()
    return values


if __name__ == "__main__":
    main()
