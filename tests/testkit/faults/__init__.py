"""Fault injection on loopback: the three services as real processes, a PostgreSQL the harness can stop, a steady
camera load with a ledger, and a report of what a fault lost (see ``docs/reliability.md``).

- :mod:`testkit.faults.postgres`: a private PostgreSQL cluster that can be stopped and started on its port.
- :mod:`testkit.faults.processes`: ``python -m anpr.<service>`` processes, killed, stopped and restarted.
- :mod:`testkit.faults.load`: cameras pushing vehicle passes over PushFrames, and the ledger of what was accepted.
- :mod:`testkit.faults.alerts`: a SubscribeAlerts subscriber that can be killed and resumed from its cursor.
- :mod:`testkit.faults.report`: passes, events, losses, duplicates, dead letters, alerts and recovery time.
- :mod:`testkit.faults.scenarios`: the faults and the runner that ties everything together.
"""
