#!/usr/bin/python3
"""An independent reader of a metrics exposition for the tests: the
prometheus_client package's own OpenMetrics parser (not hookbus's encoder).

    metrics.py < EXPOSITION

Prints one JSON object: each sample as `name{label="value",...}` (labels
sorted) mapped to its value. Exits non-zero when the text does not parse.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    samples = {}
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    json.dump(samples, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
