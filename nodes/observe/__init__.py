"""What operators see of a running cluster; all of it observes, none of it steers.

- `logs`: log lines (plain or JSON) and the coordinator's event log;
- `metrics`: the Prometheus exporter (an add-on);
- `dashboard`: the web dashboard (an add-on), serving `overview` (its data) as `page` (HTML);
- `traffic`: frame counts and the in-process peers the add-ons talk through;
- `formatting`: text helpers shared with the terminal views (`nodes.cli.views`);
- `progress`: the demo producer's progress bar or lines.
"""
