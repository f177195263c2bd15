"""The deploy's own code: where things go on the host, host data checks, facts, operations and rendering.

`deploy.py` (the pyinfra steps) and `inventory.py` (hosts and host data) import these;
the unit tests import them too, so what the tests render is what the deploy uploads.
"""
