"""The recharge conversation and its use cases: the application core.

Rule: this package imports only the standard library and small pure helpers (phonenumbers,
python-stdnum). It never imports bot, adapters, storage or a vendor SDK; a test enforces it.
I/O happens behind the Protocols in ``ports.py``, which adapters and storage implement.
"""
