"""Adapters from AWS events to the core's `Message`: one module per event the functions accept."""
