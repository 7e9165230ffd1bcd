#!/usr/bin/env python3
"""Admin API smoke test against a running Sluice broker.

Usage: scripts/admin_smoke.py HOST:PORT

Drives CreateTopics, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
CreatePartitions, DeleteRecords and DescribeCluster through two independent clients:
confluent-kafka (librdkafka) and kafka-python. Also checks that a config change reaches
open partitions (max.message.bytes refuses, then accepts, a large record).

Idempotent (every topic name is unique), bounded in time (SIGALRM), exits non-zero on the
first failure. Topics it creates are deleted at the end on a best-effort basis.
"""

import signal
import sys
import time
import traceback
import uuid
import warnings

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

# AlterConfigs is deprecated in the clients, but it is one of the APIs under test.
warnings.filterwarnings("ignore", category=DeprecationWarning)

TIMEOUT = 15  # seconds per admin call
TOTAL = 180  # seconds for the whole run

checks = 0


def check(condition, what):
    global checks
    if not condition:
        raise AssertionError(what)
    checks += 1


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_code(call):
    """Runs `call` (which should fail) and returns the Kafka error code it failed with."""
    try:
        call()
    except KafkaException as error:
        return error.args[0].code()
    raise AssertionError("expected a Kafka error, the call succeeded")


# ---------------------------------------------------------------- confluent-kafka


def confluent(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = []

    def one(futures):
        (future,) = futures.values()
        return future.result(TIMEOUT)

    def topic_configs(name):
        return one(admin.describe_configs([ConfigResource(ResourceType.TOPIC, name)]))

    def partitions_of(name):
        return len(admin.list_topics(topic=name, timeout=TIMEOUT).topics[name].partitions)

    # DescribeCluster
    cluster = admin.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    check(cluster.cluster_id, "describe_cluster: cluster id")
    check(len(cluster.nodes) == 1, f"describe_cluster: one node, got {cluster.nodes}")
    node = cluster.nodes[0]
    check(cluster.controller.id == node.id, "describe_cluster: controller is the broker")
    port = bootstrap.rsplit(":", 1)[1]
    check(node.port == int(port), f"describe_cluster: port {node.port}")
    node_id = node.id

    # CreateTopics with an override, then DescribeConfigs on the topic.
    topic = unique("admin-smoke")
    one(admin.create_topics([NewTopic(topic, 2, 1, config={"retention.ms": "86400000"})]))
    created.append(topic)
    configs = topic_configs(topic)
    check(
        configs["retention.ms"].value == "86400000"
        and configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
        f"describe_configs: topic override {configs['retention.ms']}",
    )
    check(
        configs["cleanup.policy"].value == "delete"
        and configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value,
        "describe_configs: default cleanup.policy",
    )
    check(not configs["retention.ms"].is_read_only, "describe_configs: topic configs writable")
    for key in ("segment.bytes", "max.message.bytes", "message.timestamp.type"):
        check(key in configs, f"describe_configs: {key} listed")
    check(
        error_code(lambda: topic_configs(unique("missing"))) == KafkaError.UNKNOWN_TOPIC_OR_PART,
        "describe_configs: unknown topic",
    )

    # DescribeConfigs on the broker.
    broker = one(admin.describe_configs([ConfigResource(ResourceType.BROKER, str(node_id))]))
    check(broker["node.id"].value == str(node_id), "describe_configs: broker node.id")
    check(broker["log.dirs"].value, "describe_configs: broker log.dirs")
    check(all(entry.is_read_only for entry in broker.values()), "broker configs read-only")
    # (Another broker id is not tried: clients route broker resources to that broker.)

    # AlterConfigs replaces all overrides; validate_only changes nothing.
    one(
        admin.alter_configs(
            [ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.ms": "1"})],
            validate_only=True,
        )
    )
    check(topic_configs(topic)["segment.ms"].value == "604800000", "alter_configs validate_only")
    one(
        admin.alter_configs(
            [ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.ms": "3600000"})]
        )
    )
    configs = topic_configs(topic)
    check(configs["segment.ms"].value == "3600000", "alter_configs: set")
    check(
        configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value,
        "alter_configs: replaces overrides (retention.ms back to default)",
    )
    check(
        error_code(
            lambda: one(
                admin.alter_configs(
                    [ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.ms": "x"})]
                )
            )
        )
        == KafkaError.INVALID_CONFIG,
        "alter_configs: invalid value",
    )
    check(
        error_code(
            lambda: one(
                admin.alter_configs(
                    [
                        ConfigResource(
                            ResourceType.BROKER, str(node_id), set_config={"num.partitions": "3"}
                        )
                    ]
                )
            )
        )
        == KafkaError.INVALID_REQUEST,
        "alter_configs: broker configs are static",
    )

    # IncrementalAlterConfigs: SET, APPEND, SUBTRACT, DELETE.
    def incremental(*entries, validate_only=False):
        return one(
            admin.incremental_alter_configs(
                [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))],
                validate_only=validate_only,
            )
        )

    def op(name, kind, value=None):
        return ConfigEntry(name, value, incremental_operation=kind)

    incremental(
        op("max.message.bytes", AlterConfigOpType.SET, "1024"),
        op("cleanup.policy", AlterConfigOpType.APPEND, "compact"),
    )
    configs = topic_configs(topic)
    check(configs["max.message.bytes"].value == "1024", "incremental: SET")
    check(configs["cleanup.policy"].value == "delete,compact", "incremental: APPEND")
    check(configs["segment.ms"].value == "3600000", "incremental: other overrides kept")
    incremental(op("cleanup.policy", AlterConfigOpType.SUBTRACT, "delete"))
    check(topic_configs(topic)["cleanup.policy"].value == "compact", "incremental: SUBTRACT")
    incremental(op("segment.ms", AlterConfigOpType.DELETE), validate_only=True)
    check(topic_configs(topic)["segment.ms"].value == "3600000", "incremental: validate_only")
    check(
        error_code(lambda: incremental(op("retention.ms", AlterConfigOpType.APPEND, "5")))
        == KafkaError.INVALID_CONFIG,
        "incremental: APPEND on a non-list config",
    )

    # The new max.message.bytes reaches the open partition: a 4 KiB record is refused.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    outcomes = []

    def produce(value, partition=0):
        producer.produce(
            topic,
            value=value,
            partition=partition,
            on_delivery=lambda error, message: outcomes.append(error),
        )
        producer.flush(TIMEOUT)
        check(outcomes, "producer: delivery report")
        return outcomes.pop()

    error = produce(b"x" * 4096)
    check(
        error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE,
        f"max.message.bytes applied to the open partition: {error}",
    )
    incremental(
        op("max.message.bytes", AlterConfigOpType.DELETE),
        op("cleanup.policy", AlterConfigOpType.DELETE),
    )
    configs = topic_configs(topic)
    check(
        configs["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
        and configs["cleanup.policy"].value == "delete",
        "incremental: DELETE",
    )
    check(produce(b"x" * 4096) is None, "max.message.bytes reset on the open partition")

    # CreatePartitions.
    one(admin.create_partitions([NewPartitions(topic, 4)], validate_only=True))
    check(partitions_of(topic) == 2, "create_partitions: validate_only")
    one(admin.create_partitions([NewPartitions(topic, 4)]))
    check(partitions_of(topic) == 4, "create_partitions: grown to 4")
    check(
        error_code(lambda: one(admin.create_partitions([NewPartitions(topic, 3)])))
        == KafkaError.INVALID_PARTITIONS,
        "create_partitions: cannot shrink",
    )
    one(admin.create_partitions([NewPartitions(topic, 6, [[node_id], [node_id]])]))
    check(partitions_of(topic) == 6, "create_partitions: manual assignment")
    check(
        error_code(
            lambda: one(admin.create_partitions([NewPartitions(topic, 7, [[node_id + 1]])]))
        )
        == KafkaError.INVALID_REPLICA_ASSIGNMENT,
        "create_partitions: assignment to another broker",
    )
    # A new producer: the first one's metadata still says 2 partitions.
    producer.flush(TIMEOUT)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    check(produce(b"new", partition=5) is None, "produce to a new partition")

    # DeleteRecords.
    for index in range(10):
        producer.produce(topic, value=b"%d" % index, partition=1)
    check(producer.flush(TIMEOUT) == 0, "producer: flushed")

    def delete(partition, offset):
        return one(admin.delete_records([TopicPartition(topic, partition, offset)]))

    check(delete(1, 4).low_watermark == 4, "delete_records: low watermark 4")
    check(delete(1, 2).low_watermark == 4, "delete_records: below the start is a no-op")
    low, high = producer_watermarks(bootstrap, topic, 1)
    check((low, high) == (4, 10), f"delete_records: watermarks {(low, high)}")
    check(
        error_code(lambda: delete(1, 100)) == KafkaError.OFFSET_OUT_OF_RANGE,
        "delete_records: past the high watermark",
    )
    check(delete(1, -1).low_watermark == 10, "delete_records: -1 is the high watermark")

    return admin, created


def producer_watermarks(bootstrap, topic, partition):
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("smoke")})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT)
    finally:
        consumer.close()


# ---------------------------------------------------------------- kafka-python


def kafka_python(bootstrap):
    from kafka import KafkaProducer
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import ConfigResource as KConfigResource
    from kafka.admin import KafkaAdminClient
    from kafka.errors import OffsetOutOfRangeError, UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT * 1000)
    topic = unique("admin-smoke-kp")
    try:
        result = admin.create_topics(
            {topic: {"num_partitions": 1, "configs": {"retention.ms": "3600000"}}}
        )
        check(result["topics"][0]["error_code"] == 0, f"kafka-python create_topics: {result}")

        def topic_configs(config_filter="all"):
            answer = admin.describe_configs(
                [KConfigResource("TOPIC", topic)], config_filter=config_filter
            )
            return answer["topic"][topic]

        configs = topic_configs()
        check(
            configs["retention.ms"]["value"] == "3600000"
            and configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG",
            f"kafka-python describe_configs: {configs['retention.ms']}",
        )
        check(
            configs["cleanup.policy"]["config_type"] == "LIST",
            "kafka-python describe_configs: config type",
        )
        check(
            list(topic_configs("modified")) == ["retention.ms"],
            "kafka-python describe_configs: only modified",
        )

        cluster = admin.describe_cluster()
        node_id = cluster["controller_id"]
        check(len(cluster["brokers"]) == 1, f"kafka-python describe_cluster: {cluster}")
        broker = admin.describe_configs(
            [KConfigResource("BROKER", str(node_id), {"num.partitions": None})],
            include_synonyms=True,
            config_filter="all",
        )["broker"][str(node_id)]
        check(
            list(broker) == ["num.partitions"] and broker["num.partitions"]["read_only"],
            f"kafka-python describe_configs broker: {broker}",
        )

        # Legacy AlterConfigs, then IncrementalAlterConfigs.
        answer = admin.alter_configs(
            [KConfigResource("TOPIC", topic, {"segment.ms": "7200000"})], incremental=False
        )
        check(answer["topic"][topic] == "OK", f"kafka-python alter_configs: {answer}")
        # kafka-python re-sends the other modified keys itself (AlterConfigs replaces).
        configs = topic_configs("modified")
        check(
            set(configs) == {"retention.ms", "segment.ms"}
            and configs["segment.ms"]["value"] == "7200000",
            f"kafka-python alter_configs: {configs}",
        )
        answer = admin.alter_configs(
            [KConfigResource("TOPIC", topic, {"cleanup.policy": ("APPEND", "compact")})],
            incremental=True,
        )
        check(answer["topic"][topic] == "OK", f"kafka-python incremental: {answer}")
        check(
            topic_configs()["cleanup.policy"]["value"] == "delete,compact",
            "kafka-python incremental APPEND",
        )
        answer = admin.reset_configs([KConfigResource("TOPIC", topic, ["cleanup.policy"])])
        check(answer["topic"][topic] == "OK", f"kafka-python reset_configs: {answer}")
        check(
            set(topic_configs("modified")) == {"retention.ms", "segment.ms"},
            "kafka-python reset_configs (DELETE)",
        )

        # CreatePartitions.
        answer = admin.create_partitions({topic: 3})
        check(
            all(result.error_code == 0 for result in answer.results),
            f"kafka-python create_partitions: {answer}",
        )
        (description,) = admin.describe_topics([topic])
        check(len(description["partitions"]) == 3, "kafka-python: 3 partitions")

        # DeleteRecords.
        producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
        for index in range(6):
            producer.send(topic, b"%d" % index, partition=2)
        producer.flush(TIMEOUT)
        producer.close(TIMEOUT)
        answer = admin.delete_records({KTopicPartition(topic, 2): 5})
        check(
            answer[KTopicPartition(topic, 2)]["low_watermark"] == 5,
            f"kafka-python delete_records: {answer}",
        )
        try:
            admin.delete_records({KTopicPartition(topic, 2): 50})
            check(False, "kafka-python delete_records past the end should fail")
        except OffsetOutOfRangeError:
            check(True, "kafka-python delete_records past the end")
        # Sent straight to the broker (librdkafka refuses unknown partitions client-side).
        try:
            admin.delete_records({KTopicPartition(topic, 99): 0}, partition_leader_id=node_id)
            check(False, "kafka-python delete_records on an unknown partition should fail")
        except UnknownTopicOrPartitionError:
            check(True, "kafka-python delete_records on an unknown partition")
    finally:
        try:
            admin.delete_topics([topic])
        except Exception as error:  # noqa: BLE001 - best-effort cleanup
            print(f"cleanup: {error}", file=sys.stderr)
        admin.close()


# ---------------------------------------------------------------- every version, on the wire


def wire_versions(bootstrap):
    """Sends each API at every version Sluice serves, with kafka-python's encoder pinned to
    that version, and checks the per-resource error codes."""
    from kafka.admin import ConfigResource, KafkaAdminClient
    from kafka.protocol.admin import (
        AlterConfigsRequest,
        CreatePartitionsRequest,
        DeleteRecordsRequest,
        DescribeClusterRequest,
        DescribeConfigsRequest,
        IncrementalAlterConfigsRequest,
    )

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT * 1000)
    topic, missing = unique("admin-smoke-wire"), unique("missing")
    try:
        admin.create_topics({topic: {"num_partitions": 1}})
        node = admin.describe_cluster()["controller_id"]

        async def send(request):
            return await admin._manager.send(request)

        def call(kind, version, **fields):
            request = kind(min_version=version, max_version=version, **fields)
            response = admin._manager.run(send, request)
            check(request.API_VERSION == version, f"{kind.__name__} sent at v{version}")
            return response

        for version in range(1, 5):
            response = call(
                DescribeConfigsRequest,
                version,
                resources=[
                    (2, topic, None),
                    (2, missing, None),
                    (4, str(node), ["node.id"]),
                    (4, str(node + 1), None),
                ],
                include_synonyms=True,
            )
            codes = [result.error_code for result in response.results]
            check(codes == [0, 3, 0, 42], f"DescribeConfigs v{version}: {codes}")
            check(len(response.results[0].configs) == 10, f"DescribeConfigs v{version}: keys")
            check(
                [(c.name, c.value) for c in response.results[2].configs]
                == [("node.id", str(node))],
                f"DescribeConfigs v{version}: broker key filter",
            )
        for version in range(0, 3):
            response = call(
                AlterConfigsRequest,
                version,
                resources=[
                    (2, topic, [("segment.ms", str(3600000 + version))]),
                    (4, str(node), [("num.partitions", "2")]),
                    (2, missing, []),
                ],
                validate_only=False,
            )
            codes = [result.error_code for result in response.responses]
            check(codes == [0, 42, 3], f"AlterConfigs v{version}: {codes}")
        for version in range(0, 2):
            response = call(
                IncrementalAlterConfigsRequest,
                version,
                resources=[
                    (2, topic, [("retention.ms", 0, "1000"), ("cleanup.policy", 2, "compact")]),
                    (2, missing, [("retention.ms", 0, "1000")]),
                ],
                validate_only=False,
            )
            codes = [result.error_code for result in response.responses]
            check(codes == [0, 3], f"IncrementalAlterConfigs v{version}: {codes}")
            response = call(
                IncrementalAlterConfigsRequest,
                version,
                resources=[(2, topic, [("retention.ms", 2, "1")])],
                validate_only=False,
            )
            codes = [result.error_code for result in response.responses]
            check(codes == [40], f"IncrementalAlterConfigs v{version} APPEND: {codes}")
        for version in range(0, 4):
            topics = [
                CreatePartitionsRequest.CreatePartitionsTopic(name=topic, count=2 + version),
                CreatePartitionsRequest.CreatePartitionsTopic(name=missing, count=5),
            ]
            response = call(
                CreatePartitionsRequest, version, topics=topics, timeout_ms=5000, validate_only=False
            )
            codes = [result.error_code for result in response.results]
            check(codes == [0, 3], f"CreatePartitions v{version}: {codes}")
        for version in range(0, 3):
            response = call(
                DeleteRecordsRequest,
                version,
                topics=[(topic, [(0, 0), (99, 0)]), (missing, [(0, 0)])],
                timeout_ms=5000,
            )
            codes = [p.error_code for t in response.topics for p in t.partitions]
            check(codes == [0, 3, 3], f"DeleteRecords v{version}: {codes}")
            check(response.topics[0].partitions[0].low_watermark == 0, "DeleteRecords: low")
        for version in range(0, 3):
            response = call(
                DescribeClusterRequest, version, include_cluster_authorized_operations=True
            )
            check(
                response.error_code == 0
                and [b.broker_id for b in response.brokers] == [node]
                and response.controller_id == node
                and set(response.authorized_operations) == {5, 7, 8, 9, 10, 11, 12},
                f"DescribeCluster v{version}: {response}",
            )
            if version >= 1:
                response = call(DescribeClusterRequest, version, endpoint_type=2)
                check(response.error_code == 114, f"DescribeCluster v{version} controllers")
        configs = admin.describe_configs([ConfigResource("TOPIC", topic)])["topic"][topic]
        check(
            {key: value["value"] for key, value in configs.items()}
            == {"retention.ms": "1000", "cleanup.policy": "delete,compact", "segment.ms": "3600002"},
            f"wire: final overrides {configs}",
        )
    finally:
        try:
            admin.delete_topics([topic])
        except Exception as error:  # noqa: BLE001 - best-effort cleanup
            print(f"cleanup: {error}", file=sys.stderr)
        admin.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap = sys.argv[1]

    def timed_out(*_):
        raise TimeoutError(f"admin smoke test did not finish in {TOTAL}s")

    signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(TOTAL)
    started = time.monotonic()
    admin, created = confluent(bootstrap)
    print(f"confluent-kafka: {checks} checks passed")
    before = checks
    kafka_python(bootstrap)
    print(f"kafka-python: {checks - before} checks passed")
    before = checks
    wire_versions(bootstrap)
    print(f"every version on the wire: {checks - before} checks passed")
    for future in admin.delete_topics(created).values():
        try:
            future.result(TIMEOUT)
        except KafkaException as error:
            print(f"cleanup: {error}", file=sys.stderr)
    signal.alarm(0)
    print(f"admin smoke test passed: {checks} checks in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:  # noqa: BLE001 - any failure is a test failure
        traceback.print_exc()
        print(f"FAILED: {type(error).__name__}: {error or 'no answer in time'}", file=sys.stderr)
        sys.exit(1)
