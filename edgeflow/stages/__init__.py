"""Stage kinds: one module per kind (``Config`` schema + ``run``), discovered by ``edgeflow.config``.

Stage modules import heavy libraries only inside ``run`` so config validation stays fast.
"""
