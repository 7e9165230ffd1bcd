"""Python client smoke test against a running Sluice broker (started by client_smoke.sh).

confluent-kafka: AdminClient creates a topic, an idempotent producer sends 1000 keyed
records with acks=all and Kafka's murmur2 partitioner, a consumer reads them all back with
assign() and every key, value and offset is checked; then a group of two consumers
(subscribe, commit per record) reads every record exactly once between them, and the
group's committed offsets equal the end offsets.

kafka-python: an idempotent producer sends 1000 keyed records to an auto-created topic, a
consumer reads them back with assign() and seek_to_beginning(), and the counts and contents
are checked; then a consumer group reads them all, commits, and a new member of the group
finds the committed offsets at the end.

Usage: python3 scripts/client_smoke.py HOST:PORT   (exits non-zero on any failure)
"""

import sys
import time

COUNT = 1000
TIMEOUT = 30.0


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def confluent(bootstrap):
    from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
    from confluent_kafka.admin import AdminClient, NewTopic

    topic, partitions = "smoke-confluent", 4
    common = {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}

    admin = AdminClient(dict(common))
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        request_timeout=TIMEOUT,
    )
    futures[topic].result(timeout=TIMEOUT)
    metadata = admin.list_topics(timeout=TIMEOUT)
    check(topic in metadata.topics, f"{topic} not in metadata")
    check(
        len(metadata.topics[topic].partitions) == partitions,
        f"{topic} has {len(metadata.topics[topic].partitions)} partitions",
    )

    producer = Producer(
        dict(
            common,
            **{
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": "murmur2_random",
                "message.timeout.ms": int(TIMEOUT * 1000),
            },
        )
    )
    delivered, errors = {}, []

    def on_delivery(error, message):
        if error is not None:
            errors.append(str(error))
        else:
            delivered[message.key().decode()] = (message.partition(), message.offset())

    for i in range(COUNT):
        producer.produce(
            topic,
            key=f"key-{i}",
            value=f"value-{i}",
            headers=[("id", str(i).encode())],
            on_delivery=on_delivery,
        )
        producer.poll(0)
    left = producer.flush(TIMEOUT)
    check(left == 0, f"confluent-kafka: {left} records not delivered")
    check(not errors, f"confluent-kafka delivery errors: {errors[:3]}")
    check(len(delivered) == COUNT, f"confluent-kafka: {len(delivered)} delivered")

    consumer = Consumer(
        dict(
            common,
            **{
                "group.id": "smoke",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            },
        )
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen = {}
    deadline = time.monotonic() + TIMEOUT
    while len(seen) < COUNT and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        check(message.error() is None, f"consumer error: {message.error()}")
        key = message.key().decode()
        check(key not in seen, f"{key} read twice")
        check(message.value().decode() == "value-" + key[4:], f"value of {key}")
        check(message.headers() == [("id", key[4:].encode())], f"headers of {key}")
        seen[key] = (message.partition(), message.offset())
    consumer.close()
    check(len(seen) == COUNT, f"confluent-kafka: read {len(seen)} of {COUNT}")
    check(seen == delivered, "confluent-kafka: read positions differ from delivery reports")
    print(f"confluent-kafka: {COUNT} records produced and consumed over {partitions} partitions")

    # A group of two: every record exactly once across the members, commits per record.
    group = {
        "group.id": "smoke-confluent-group",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
    }
    members = [Consumer(dict(common, **group)) for _ in range(2)]
    for member in members:
        member.subscribe([topic])
    counts = {}
    deadline = time.monotonic() + 2 * TIMEOUT
    while len(counts) < COUNT and time.monotonic() < deadline:
        for member in members:
            message = member.poll(0.2)
            if message is None or message.error() is not None:
                continue
            key = message.key().decode()
            counts[key] = counts.get(key, 0) + 1
            member.commit(message=message, asynchronous=False)
    check(len(counts) == COUNT, f"confluent-kafka group: read {len(counts)} of {COUNT}")
    twice = [key for key, count in counts.items() if count > 1]
    check(not twice, f"confluent-kafka group: read more than once: {twice[:5]}")
    committed = members[0].committed(
        [TopicPartition(topic, p) for p in range(partitions)], timeout=TIMEOUT
    )
    ends = {p: members[0].get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)[1] for p in range(partitions)}
    for tp in committed:
        check(tp.offset == ends[tp.partition], f"committed {tp.offset} != end {ends[tp.partition]} on {tp.partition}")
    for member in members:
        member.close()
    print(f"confluent-kafka: a group of 2 consumed {COUNT} records exactly once and committed them")


def kafka_python(bootstrap):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = "smoke-kafka-python"
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=int(TIMEOUT * 1000),
        max_block_ms=int(TIMEOUT * 1000),
    )
    futures = [
        producer.send(topic, key=f"key-{i}".encode(), value=f"value-{i}".encode())
        for i in range(COUNT)
    ]
    producer.flush(timeout=TIMEOUT)
    delivered = {}
    for i, future in enumerate(futures):
        record = future.get(timeout=TIMEOUT)
        delivered[f"key-{i}"] = (record.partition, record.offset)
    producer.close(timeout=TIMEOUT)
    check(len(delivered) == COUNT, f"kafka-python: {len(delivered)} delivered")

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(TIMEOUT * 1000) + 5000,
    )
    partitions = None
    deadline = time.monotonic() + TIMEOUT
    while not partitions and time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            time.sleep(0.2)
    check(partitions, f"kafka-python: no partitions for {topic}")
    assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assignment)
    consumer.seek_to_beginning(*assignment)
    seen = {}
    while len(seen) < COUNT and time.monotonic() < deadline:
        for _, records in consumer.poll(timeout_ms=500).items():
            for record in records:
                key = record.key.decode()
                check(key not in seen, f"{key} read twice")
                check(record.value.decode() == "value-" + key[4:], f"value of {key}")
                seen[key] = (record.partition, record.offset)
    end_offsets = consumer.end_offsets(assignment)
    consumer.close()
    check(len(seen) == COUNT, f"kafka-python: read {len(seen)} of {COUNT}")
    check(seen == delivered, "kafka-python: read positions differ from the producer's")
    check(
        sum(end_offsets.values()) == COUNT,
        f"kafka-python: end offsets {end_offsets} do not add up to {COUNT}",
    )
    print(f"kafka-python: {COUNT} records produced and consumed over {len(partitions)} partitions")

    # A consumer group: subscribe, read everything, commit; a new member sees the commits.
    group = dict(
        bootstrap_servers=bootstrap,
        group_id="smoke-kafka-python-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=int(TIMEOUT * 1000) + 5000,
    )
    consumer = KafkaConsumer(topic, **group)
    seen = set()
    deadline = time.monotonic() + 2 * TIMEOUT
    while len(seen) < COUNT and time.monotonic() < deadline:
        for _, records in consumer.poll(timeout_ms=500).items():
            for record in records:
                key = record.key.decode()
                check(key not in seen, f"kafka-python group: {key} read twice")
                seen.add(key)
    check(len(seen) == COUNT, f"kafka-python group: read {len(seen)} of {COUNT}")
    consumer.commit()
    consumer.close()
    again = KafkaConsumer(**group)
    committed = sum(again.committed(tp) or 0 for tp in assignment)
    again.close()
    check(committed == COUNT, f"kafka-python group: committed {committed}, expected {COUNT}")
    print(f"kafka-python: a consumer group read {COUNT} records and its commits were found again")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: client_smoke.py HOST:PORT")
    bootstrap = sys.argv[1]
    confluent(bootstrap)
    kafka_python(bootstrap)


if __name__ == "__main__":
    main()
