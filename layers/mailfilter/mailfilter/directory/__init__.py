"""The customer directory: its file format, its validation, and how an address finds its customer.

The port the engine reads it through is `mailfilter.ports.Directory`.
"""
