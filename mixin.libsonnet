// Monitoring mixin for objstore-permission-exporter: the alerting rules and the Grafana dashboard(s).
//
// It exports the committed files unchanged (alerts/objstore-permission-exporter.rules.yml and
// dashboards/*.json), so jsonnet users get exactly what the rule unit tests and dashboard tests check.
// It sits at the top of the repository because it imports those files by relative path: vendor the whole
// repository with jsonnet-bundler and import it from there.
//
//   jb install github.com/objstore-permission-exporter/objstore-permission-exporter@main
//
//   local ope = (import 'objstore-permission-exporter/mixin.libsonnet') + {
//     _config+:: {
//       objstorePermissionSelector: 'job="objstore-permission-exporter", namespace="monitoring"',
//       objstorePermissionFor: { ObjstorePermissionExcessPermission: '2h' },
//     },
//   };
//   // kube-prometheus: kp + { prometheusAlerts+:: ope.prometheusAlerts, grafanaDashboards+:: ope.grafanaDashboards }
//
// Needs std.parseYaml (go-jsonnet >= 0.18, C++ jsonnet >= 0.20).
local rulesFile = std.parseYaml(importstr 'alerts/objstore-permission-exporter.rules.yml');
local dashboards = {
  'objstore-permission-overview.json': std.parseJson(importstr 'dashboards/objstore-permission-overview.json'),
};
// The selector written in every expression of the committed rules file.
local defaultSelector = 'job="objstore-permission-exporter"';

{
  _config+:: {
    // Label selector of the exporter's scrape job; replaces the default in every alert expression.
    objstorePermissionSelector: defaultSelector,
    // `for:` by alert name, added or replacing the committed value, e.g. { ObjstorePermissionExporterDown: '10m' }.
    objstorePermissionFor: {},
  },

  local config = self._config,

  prometheusAlerts+:: {
    groups+: [
      group {
        rules: [
          rule {
            expr: std.strReplace(rule.expr, defaultSelector, config.objstorePermissionSelector),
          } + (
            if std.objectHas(rule, 'alert') && std.objectHas(config.objstorePermissionFor, rule.alert)
            then { 'for': config.objstorePermissionFor[rule.alert] }
            else {}
          )
          for rule in group.rules
        ],
      }
      for group in rulesFile.groups
    ],
  },

  grafanaDashboards+:: dashboards,
}
