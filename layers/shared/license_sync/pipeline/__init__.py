"""The sync pipeline's use cases: start a run, collect an instance, finalize, ingest exports.

They orchestrate the domain through the ports in `ports.py` and hold no AWS or HTTP code.
"""
