"""The locust load test of a whole local network (``python -m loadtest locust|sweep``).

The orchestrator (:mod:`.cli`, :mod:`.network`, :mod:`.sweep`) never imports locust, which
monkeypatches whatever imports it with gevent; the users (:mod:`.scenarios`,
:mod:`.sweep_users` and what they import) run inside locust.
"""
