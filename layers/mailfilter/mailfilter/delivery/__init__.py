"""Building the mail the filter sends: the allowed copy and the partner's reroute notice.

Delivery acts on decisions it is given and never re-decides; nothing here does I/O.
"""
