"""The policy: classification, the decision table, and the inbound security gates."""
