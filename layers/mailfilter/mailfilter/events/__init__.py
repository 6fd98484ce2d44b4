"""Adapters from AWS events to the core's `Message`: one module per event the functions accept."""


class EventError(ValueError):
    """An event that is not of the expected shape; the message names what was expected."""
