"""Scrapes a running broker's admin listener and parses /metrics with the official Python
Prometheus client's parser, checking the figures against what the smoke run did to `topic`.

usage: metrics_smoke.py ADMIN_HOST:PORT TOPIC RECORDS
"""

import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def get(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode()


def main():
    admin, topic, records = sys.argv[1], sys.argv[2], int(sys.argv[3])
    status, body = get(f"http://{admin}/health")
    assert status == 200 and body == "ready\n", (status, body)
    status, text = get(f"http://{admin}/metrics")
    assert status == 200, status

    families = {family.name: family for family in text_string_to_metric_families(text)}

    def samples(name, **labels):
        # The parser names counter families without `_total`; samples keep the full name.
        family = families.get(name) or families.get(name.removesuffix("_total"))
        assert family is not None, f"no metric family {name}"
        return [
            sample
            for sample in family.samples
            if sample.name in (name, family.name)
            and all(sample.labels.get(key) == value for key, value in labels.items())
        ]

    def total(name, **labels):
        return sum(sample.value for sample in samples(name, **labels))

    assert total("sluice_ready") == 1
    assert total("sluice_partition_records_in_total", topic=topic) == records, total(
        "sluice_partition_records_in_total", topic=topic
    )
    assert total("sluice_partition_high_watermark", topic=topic) == records
    assert total("sluice_partition_records_out_total", topic=topic) >= records
    assert total("sluice_partition_bytes_in_total", topic=topic) > 0
    assert total("sluice_requests_total", api="Produce") > 0
    assert total("sluice_requests_total", api="Fetch") > 0

    latency = families["sluice_request_duration_seconds"]
    assert latency.type == "histogram", latency.type
    produce = [s for s in latency.samples if s.labels.get("api") == "Produce"]
    buckets = [s for s in produce if s.name.endswith("_bucket")]
    count = sum(s.value for s in produce if s.name.endswith("_count"))
    infinite = sum(s.value for s in buckets if s.labels["le"] == "+Inf")
    assert count > 0 and infinite == count, (count, infinite)

    fsync = families["sluice_fsync_duration_seconds"]
    assert fsync.type == "histogram"
    assert sum(s.value for s in fsync.samples if s.name.endswith("_count")) > 0

    print(
        f"metrics_smoke: {len(families)} families parsed; {topic}: "
        f"{int(total('sluice_partition_records_in_total', topic=topic))} records in, "
        f"{int(total('sluice_partition_records_out_total', topic=topic))} out"
    )


if __name__ == "__main__":
    main()
