"""Test helpers and the pytest plugin (registered through the ``pytest11`` entry point).

INTERIM placeholder from the project skeleton; the core client issue adds capture and the fixture.
"""
