"""pytest plugin: run any test suite with fastprob's drop-ins swapped into the peer libraries.

    pytest -p fastprob.compat.pytest_plugin --fastprob-compat nflows [--fastprob-counters out.json] ...

``--fastprob-compat`` (repeatable: nflows, normflows, sklearn, zuko, freia) calls that adapter's
``install()`` before collection, so test modules that import the peer's classes get the
drop-ins; ``--fastprob-counters`` writes the fast-path counters as JSON at the end.  This is
how fastprob runs the peers' own, unmodified test files (tests/test_compat_*.py).
"""
from __future__ import annotations

import importlib
import json

_MODULES = {"nflows": "fastprob.compat.nflows", "normflows": "fastprob.compat.normflows",
            "sklearn": "fastprob.text", "zuko": "fastprob.compat.zuko", "freia": "fastprob.compat.freia"}


def pytest_addoption(parser):
    group = parser.getgroup("fastprob")
    group.addoption("--fastprob-compat", action="append", default=[], choices=sorted(_MODULES),
                    help="install fastprob's drop-ins into this peer library before collection")
    group.addoption("--fastprob-counters", default=None, help="write the fast-path counters (JSON) here")


def pytest_configure(config):
    for name in config.getoption("--fastprob-compat"):
        importlib.import_module(_MODULES[name]).install()


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--fastprob-counters")
    if path:
        from . import counters

        with open(path, "w") as f:
            json.dump(counters(), f, indent=1, sort_keys=True)
