"""Reading a ``/metrics`` exposition the way Prometheus does, every worker's series summed."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that carry ``labels`` (each worker's ``pid`` series)."""
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    if not found:
        raise AssertionError(f"{name} {labels} not in /metrics")
    return sum(found)
