"""I/O behind small named modules: DynamoDB, S3, SES. Nothing here decides."""
