"""AWS adapters behind the pipeline's ports (DynamoDB, SQS, S3, Secrets Manager)."""
