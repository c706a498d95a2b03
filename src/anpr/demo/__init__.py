"""``anpr demo``: the whole suite on one machine with a simulated fleet, a demo hotlist and a live view.

- :mod:`anpr.demo.fleet`: the fleet (fixed cameras, dash-cams, mobile units with moving GPS tracks) and the street
  video each one plays, rendered with the project's plate renderer; every vehicle pass is recorded as ground truth.
- :mod:`anpr.demo.score`: what the suite emitted, measured against that ground truth.
- :mod:`anpr.demo.view`: the live terminal view (rich) and the ``--json`` lines.
- :mod:`anpr.demo.run`: starts ``anpr up``, sets up cameras and the hotlist, drives the fleet, watches events and
  alerts, acknowledges some alerts as an operator would, and prints the summary.

Every plate the demo shows is synthetic: events are personal data, and the demo's are generated.
"""
