"""The root of every error sttkb raises on purpose. Messages say what to do next."""


class SttkbError(Exception):
    """Base of all expected sttkb errors; the CLI prints these without a traceback."""
