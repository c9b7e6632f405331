"""The DAPPER E-step on an existing distributed engine (Dask distributed or Ray).

The E-step is a map over on-disk corpus shards (each worker memory-maps the shards it is
given from shared storage) that returns sufficient statistics, reduced by a tree sum on
the workers; the M-step stays on the client.  The globals are broadcast once per
iteration (``Client.scatter(..., broadcast=True)`` / ``ray.put``), not sent per task.
"""
from .executor import DaskExecutor, RayExecutor, make_executor
from .tasks import add_stats, estep_shard

__all__ = ["DaskExecutor", "RayExecutor", "add_stats", "estep_shard", "make_executor"]
