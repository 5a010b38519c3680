"""The mapping package's commands and public API: check-mapping, explain, Resolver outcomes."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from statsd_instrument.mapping import MappingError, Resolver, check, explain, load_mapping, parse_mapping
from statsd_instrument.mapping.gosyntax import format_go_float, parse_go_duration, parse_go_float
from tests.helpers import REPO

SHIPPED = REPO / "exporter-mapping.yml"


def test_shipped_mapping_is_clean_under_check_mapping(capsys):
    assert check.main([str(SHIPPED)]) == 0
    assert capsys.readouterr().out == ""


def test_check_mapping_exits_1_with_one_line_per_finding(tmp_path, capsys):
    path = tmp_path / "m.yml"
    path.write_text(
        "defaults:\n  timer_type: histogram\nmappings:\n"
        "- match: a.*\n  name: $1_total\n  ttl: 60\n"
        "- match: a.b\n  name: ab\n"
        "- match: t\n  name: t\n  observer_type: histogram\n  histogram_options: {buckets: [1, 0.5]}\n"
    )
    assert check.main([str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == [f"{path}:{n}" for n in (2, 5, 6, 7, 12)]
    assert all(line.startswith(f"{path}:") for line in out)


def test_check_mapping_flags_the_exporters_own_names_and_a_second_type_for_a_name(tmp_path, capsys):
    path = tmp_path / "m.yml"
    path.write_text(
        "defaults:\n  observer_type: histogram\nmappings:\n"
        "- match: a.b\n  name: go_goroutines\n"  # line 5: one of the exporter's own series
        "- match: x.*\n  match_metric_type: counter\n  name: go_gc_duration_seconds_count\n"  # 8: a sample
        "- match: c.d\n  match_metric_type: counter\n  name: jobs\n"  # 9
        "- match: e.f\n  match_metric_type: observer\n  name: jobs\n"  # 12: jobs again, as a histogram
        "- match: g.h\n  match_metric_type: observer\n  name: lat\n"  # 15
        "- match: g.i\n  match_metric_type: gauge\n  name: lat_bucket\n"  # 18: a sample of lat
        "- match: k.l\n  match_metric_type: counter\n  name: jobs\n"  # 21: same name, same type: fine
        "- match: m.*\n  match_metric_type: gauge\n  name: go_${1}\n"  # 24: templated: not judged
    )
    assert check.main([str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == [f"{path}:{n}" for n in (5, 8, 14, 20)], out
    assert "go_goroutines is a metric statsd_exporter serves itself" in out[0]
    assert "go_gc_duration_seconds_count is a metric statsd_exporter serves itself (go_gc_dur" in out[1]
    assert "jobs is a histogram here but rule 2 (line 9) makes jobs a counter" in out[2]
    assert "lat_bucket is a gauge here but rule 4 (line 15) makes lat a histogram (its _sum" in out[3]


def test_check_mapping_exits_2_for_unreadable_or_not_yaml(tmp_path, capsys):
    assert check.main([str(tmp_path / "missing.yml")]) == 2
    broken = tmp_path / "broken.yml"
    broken.write_text("mappings: [\n  - {match: a\n")
    assert check.main([str(broken)]) == 2
    assert "not valid YAML" in capsys.readouterr().out


def test_check_mapping_errors_only_hides_warnings(tmp_path, capsys):
    path = tmp_path / "m.yml"
    path.write_text("mappings:\n- {match: a.b, name: x, ttl: 60}\n")
    assert check.main(["--errors-only", str(path)]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.e2e
def test_check_mapping_runs_as_a_command():
    result = subprocess.run(
        [sys.executable, "-m", "statsd_instrument.cli", "check-mapping", str(SHIPPED)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_explain_names_the_rule_the_series_and_the_refusals(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("request_count:1|c|#method:GET\nnope\n"))
    assert explain.main(["--mapping", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    rule_line = load_mapping(SHIPPED).rules[0].line
    assert f'http_requests_total{{method="GET"}} counter (rule 0 at {SHIPPED}:{rule_line})' in out
    assert "nope\n  not accepted: malformed_line" in out
    assert explain.main(["request_latency_seconds:1|ms|#quantile:1", "a.b-c:1|g"]) == 0
    out = capsys.readouterr().out
    assert "refused: reserved_label_quantile" in out
    assert "a_b_c gauge (unmapped: no rule matched, name escaped)" in out


def test_explain_exits_2_when_the_mapping_cannot_be_loaded(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("mappings:\n- match: x\n")
    assert explain.main(["--mapping", str(bad), "x:1|c"]) == 2
    assert f"{bad}:2: error" in capsys.readouterr().err


def test_resolver_reports_dropped_and_mapped_outcomes_for_other_tools():
    config = parse_mapping(
        "mappings:\n- {match: 'noise.*', name: x, action: drop}\n"
        "- {match: 'jobs.*', name: 'jobs_total', labels: {job: '$1'}}\n"
    )
    resolver = Resolver(config)
    dropped = resolver.resolve("noise.a", "counter", {})
    assert (dropped.status, dropped.rule.index) == ("dropped", 0)
    mapped = resolver.resolve("jobs.cleanup", "counter", {"host": "h1"})
    assert (mapped.name, mapped.labels, mapped.accepted) == (
        "jobs_total",
        {"host": "h1", "job": "cleanup"},
        True,
    )


def test_load_mapping_error_names_file_line_and_key(tmp_path):
    path = tmp_path / "m.yml"
    path.write_text("mappings:\n- match: a.b\n  name: x\n  observer_type: gauge\n")
    try:
        load_mapping(path)
    except MappingError as err:
        assert str(err) == f"{path}:4: error: mappings[0].observer_type: invalid observer type 'gauge' " + (
            "(histogram or summary)"
        )
    else:
        raise AssertionError("the mapping should be refused")


def test_go_number_and_duration_syntax():
    assert parse_go_float("1.") == 1.0
    assert parse_go_float(".5e1") == 5.0
    assert parse_go_float("+nan") is None
    assert parse_go_float("infinity") == float("inf")
    assert parse_go_duration("1h2m3.5s") == 3723.5
    assert parse_go_duration("250ms") == 0.25
    assert format_go_float(1e-05) == "1e-05"
    assert format_go_float(-0.5) == "-0.5"


def test_legacy_default_quantiles_replace_the_whole_default_summary_options_as_v0_28_0_does():
    config = parse_mapping(
        "defaults:\n  quantiles: [{quantile: 0.9, error: 0.01}]\n"
        "  summary_options: {max_age: 1m, age_buckets: 3}\n"
    )
    assert config.defaults.summary.quantiles == ((0.9, 0.01),)
    assert (config.defaults.summary.max_age_s, config.defaults.summary.age_buckets) == (0.0, 0)
    kept = parse_mapping("defaults:\n  summary_options: {max_age: 1m}\n").defaults.summary
    assert kept.max_age_s == 60.0 and len(kept.quantiles) == 3
