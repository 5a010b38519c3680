"""Conformance suite: mapping + datagrams -> expected series, written from statsd_exporter's docs and source.

Each ``tests/conformance/*.yml`` holds ``cases``; a case gives a mapping (YAML text, optional), parser
flags, datagrams (``datagrams_hex``: bytes that are not UTF-8), and what must follow: ``series`` (every
non-self-metric sample, exactly, unless ``subset: true``), ``stats`` (self-metric samples), ``help``
(family help texts), ``load_error`` (the exporter refuses the mapping; text it must say) or ``findings``
(check-mapping lines: line + text). Cases run against the emulation's ingestion path, and again through a
real UDP socket of an in-process ``Exporter``; pages are parsed with prometheus_client's parser.
"""

from __future__ import annotations

import math
import re
import socket
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from statsd_instrument.exporter import Exporter
from statsd_instrument.exporter.ingest import Ingestor
from statsd_instrument.exporter.lineparser import ParserFlags
from statsd_instrument.mapping import MappingError, lint_text, parse_mapping

CASE_DIR = Path(__file__).parent / "conformance"
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _cases():
    for path in sorted(CASE_DIR.glob("*.yml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            yield pytest.param(case, id=f"{path.stem}: {case['name']}")


def _runs():
    """Every case through the ingestion path; cases with traffic also through a real UDP socket."""
    for param in _cases():
        case = param.values[0]
        yield pytest.param(case, "ingest", id=f"{param.id} [ingest]")
        if "load_error" not in case and "findings" not in case:
            yield pytest.param(case, "udp", id=f"{param.id} [udp]")


def canonical(key: str) -> str:
    """``name{b="2",a="1"}`` -> ``name{a="1",b="2"}`` so expectations can list labels in any order."""
    name, _, rest = key.partition("{")
    unescape = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
    pairs = sorted(
        (k, re.sub(r'\\[\\"n]', lambda m: unescape[m.group()], v)) for k, v in _LABEL.findall(rest)
    )
    return name + ("{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}" if pairs else "")


def scrape_text(text: str) -> tuple:
    samples, helps = {}, {}
    written = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    for family in text_string_to_metric_families(text):
        helps[family.name] = family.documentation
        for s in family.samples:
            # prometheus_client's parser appends _total to counter samples; keep the name as written
            name = s.name if s.name in written else s.name[: -len("_total")]
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[name + ("{" + labels + "}" if labels else "")] = s.value
    return samples, helps


def same_value(expected, actual) -> bool:
    if isinstance(expected, str):
        expected = float(expected.replace("Inf", "inf"))
    if math.isnan(expected):
        return math.isnan(actual)
    return math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)


def run_case(case: dict, transport: str) -> tuple:
    config = parse_mapping(case.get("mapping") or "{}")
    flags = ParserFlags(**case.get("flags", {}))
    datagrams = [d.encode() for d in case.get("datagrams", [])]
    datagrams += [bytes.fromhex(d) for d in case.get("datagrams_hex", [])]  # bytes text cannot hold
    if transport == "ingest":
        ingest = Ingestor(config, flags)
        for i, datagram in enumerate(datagrams):
            ingest.handle_datagrams([datagram], now=float(i))
        return scrape_text(ingest.render(now=float(len(datagrams))))
    with Exporter(config, udp="127.0.0.1:0", web="", flags=flags) as exporter:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in datagrams:
                sock.sendto(datagram, ("127.0.0.1", exporter.udp_port))
        assert exporter.wait_for_packets(len(datagrams))
        return scrape_text(exporter.ingest.render())


@pytest.mark.parametrize(("case", "transport"), list(_runs()))
def test_conformance_case(case, transport):
    if "load_error" in case:
        with pytest.raises(MappingError) as caught:
            parse_mapping(case["mapping"])
        assert case["load_error"] in str(caught.value)
        return
    if "findings" in case:
        _, findings = lint_text(case["mapping"], "m.yml")
        lines = [f.format("m.yml") for f in findings]
        for expected in case["findings"]:
            assert any(
                line.startswith(f"m.yml:{expected['line']}: ") and expected["contains"] in line
                for line in lines
            ), f"no finding at line {expected['line']} with {expected['contains']!r} in {lines}"
        if case.get("only", True):
            assert len(lines) == len(case["findings"]), lines
        return
    samples, helps = run_case(case, transport)
    series = {k: v for k, v in samples.items() if not k.startswith("statsd_exporter_")}
    expected = {canonical(k): v for k, v in (case.get("series") or {}).items()}
    if not case.get("subset"):
        assert sorted(series) == sorted(expected), (
            f"series differ:\n got {sorted(series)}\nwant {sorted(expected)}"
        )
    for key, value in expected.items():
        assert key in series, f"missing {key}; got {sorted(series)}"
        assert same_value(value, series[key]), f"{key}: want {value}, got {series[key]}"
    for key, value in (case.get("stats") or {}).items():
        got = samples.get(canonical(key), 0.0)
        assert same_value(value, got), f"{key}: want {value}, got {got}"
    for name, text in (case.get("help") or {}).items():
        assert helps.get(name) == text


def test_suite_has_at_least_100_cases():
    assert len(list(_cases())) >= 100
