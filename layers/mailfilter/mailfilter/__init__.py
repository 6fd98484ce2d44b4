"""csp-mail-filter's runtime: the policy core and the adapters the Lambda functions share."""
