"""The locust load test of a whole local network (``python -m loadtest locust|sweep``).

Two kinds of module, never mixed: the orchestrator (:mod:`.cli`, :mod:`.network`,
:mod:`.locust_process`, :mod:`.one_run`, :mod:`.sweep`) starts the origin, ``atlas up``
and locust as child processes and never imports locust, which monkeypatches whatever
imports it with gevent; the users (:mod:`.scenarios` and :mod:`.sweep_users`, the files
locust is given with ``-f``, over :mod:`.atlas_user`, :mod:`.paying`, :mod:`.targets`,
:mod:`.payments` and :mod:`.scenario_stats`) run inside locust's process.
"""
