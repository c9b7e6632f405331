"""The DAPPER E-step on an existing distributed engine (Dask distributed or Ray).

The E-step is a map over on-disk corpus shards (each worker memory-maps the shards it is
given from shared storage) that returns sufficient statistics, reduced by a tree sum on
the workers; the M-step stays on the client.  The globals are broadcast once per
iteration (``Client.scatter(..., broadcast=True)`` / ``ray.put``), not sent per task.
Without an address, Dask fits share one local cluster per process
(:func:`local_client`), closed at exit or by :func:`shutdown_local_cluster`.
"""
from .executor import DaskExecutor, RayExecutor, make_executor
from .local import local_client, local_clusters, shutdown_local_cluster
from .tasks import add_stats, estep_shard

__all__ = ["DaskExecutor", "RayExecutor", "add_stats", "estep_shard", "local_client", "local_clusters",
           "make_executor", "shutdown_local_cluster"]
