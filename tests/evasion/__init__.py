"""The evasion corpus: attempts to get mail past the CSP rules, run by tests/test_evasion.py."""
