"""The admin API's use cases: the instance registry, manual syncs, runs, reports, uploads.

`functions/api` turns HTTP requests into calls of these functions; they know nothing of
API Gateway. What they need from AWS is named as small Protocols in `ports`.
"""
