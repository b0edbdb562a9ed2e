"""The composition root: the ``letsbot`` command line, wiring the core to storage and adapters.

``letsbot`` (the core) imports none of this; ``tests/test_imports.py`` keeps it so.
"""
