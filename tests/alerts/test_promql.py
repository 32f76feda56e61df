"""tests/promql.py: the expression extractor itself, and the metrics the rules use."""

from __future__ import annotations

import pytest

from tests import promql


def test_metric_names_skips_labels_functions_and_modifiers() -> None:
    expr = """
        sum without (reason) (rate(objstore_permission_probe_failures_total{job="a", target=~"x{1}"}[5m]))
        * on (job, instance) group_left (source, principal)
          topk by (job, instance) (1, objstore_permission_identity_info offset 1h)
        / ignoring (le) histogram_quantile(0.99, sum by (le) (
            rate(objstore_permission_probe_duration_seconds_bucket[$__rate_interval])))
        > bool 3 * last_over_time((up and some_other_metric == 1)[1h:30s]) or vector(0) unless time() > 1e3
    """
    assert promql.metric_names(expr) == {
        "objstore_permission_probe_failures_total",
        "objstore_permission_identity_info",
        "objstore_permission_probe_duration_seconds_bucket",
        "up",
        "some_other_metric",
    }


def test_label_values_variable_query() -> None:
    assert promql.metric_names('label_values(objstore_permission_target_info{job=~"$job"}, namespace)') == {
        "objstore_permission_target_info"}
    assert promql.label_values_selector("label_values(m, job)") == "m"
    assert promql.label_values_selector("sum(m)") is None


def test_contract_check_folds_histogram_suffixes_and_flags_others() -> None:
    assert promql.non_contract_metrics("rate(objstore_permission_probe_duration_seconds_sum[5m])") == set()
    assert promql.non_contract_metrics("objstore_permission_probe_success_sum + up") == {
        "objstore_permission_probe_success_sum", "up"}
    assert promql.non_contract_metrics("up", allowed=promql.SCRAPE_SERIES) == set()


def test_render_substitutes_grafana_variables() -> None:
    expr = 'rate(m{job=~"$job", target=~"${target}"}[$__rate_interval]) offset $__range'
    assert promql.render(expr) == 'rate(m{job=~".*", target=~".*"}[1m]) offset 1h'
    assert promql.render("m{a=~\"${component:regex}\"}", {"component": "store"}) == 'm{a=~"store"}'
    with pytest.raises(KeyError):
        promql.render("m{a=~\"$unknown\"}")


def test_rules_use_only_contract_metrics_and_up() -> None:
    exprs = promql.rule_exprs()
    assert len(exprs) >= 9
    for e in exprs:
        assert promql.metric_names(e.expr), e.where
        assert promql.non_contract_metrics(e.expr, allowed=promql.SCRAPE_SERIES) == set(), e.where
