"""A capability included by ``setup_process.init`` in the tests."""


def includeme(config):
    """Mark the registry, so the test sees the include happened."""
    config.registry["loader_test_capability"] = True
