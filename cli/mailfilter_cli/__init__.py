"""`mailfilter`: the operator's command-line tool (not part of the Lambda layer)."""
