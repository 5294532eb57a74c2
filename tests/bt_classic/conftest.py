"""The Bluetooth tests' fixtures (tests/ble/conftest.py): python-dbusmock's bluez5 template on a private system bus."""

from tests.ble.conftest import bluez, system_bus  # noqa: F401 (fixtures)
