"""The machinery tests/ and bench/ share: AWS resources from template.yaml, the functions' harnesses, sample data, load runs.

Installed with the project's dev extras (`pip install -e '.[dev]'`) and never shipped in the
Lambda layer, which holds the `mailfilter` package alone.

- `paths`: the checkout's folders (events/, functions/).
- `aws_resources`: tables created from template.yaml's own definitions; DynamoDB Local.
- `sample_events`: SES receipt events as SES delivers them, and SES verdict sets.
- `directory_samples`: a small in-memory directory with one customer in every segment.
- `outbound_support`, `inbound_stack`: the real handlers on DynamoDB Local and moto.
- `demo_records`: `mailfilter demo`'s services, kept up for tests.
- `sam_expansion`: template.yaml as written and as SAM expands it, with its IAM statements.
- `evasion_corpus`: every known attempt to get mail past the rules, as data.
- `faults`: seeded AWS faults and simulated Lambda crashes.
- `load_run`: faults under load, checked against an independent oracle (bench/reliability.py).
"""
