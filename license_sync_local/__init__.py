"""Local tooling around license-sync: the GitHub simulator, DynamoDB Local, the local run,
the CLI, the demo and the benchmarks. Never deployed to Lambda."""
