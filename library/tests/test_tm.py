"""The per-request transaction manager of ``db.init`` (``_tm.LazyTransactionManager``)."""

from __future__ import annotations

import pytest
import transaction.interfaces
import webtest
from pyramid.httpexceptions import HTTPBadRequest

from c2cwsgiutils import _tm, testing


class _Synch:
    def __init__(self):
        self.events = []

    def newTransaction(self, txn):  # noqa: N802  # the interface's name
        self.events.append(("new", txn))

    def beforeCompletion(self, txn):  # noqa: N802
        self.events.append(("before", txn))

    def afterCompletion(self, txn):  # noqa: N802
        self.events.append(("after", txn))


def test_a_transaction_begins_when_first_used():
    """The begun transaction gets the recorded note and user when something asks for it."""
    manager = _tm.LazyTransactionManager()
    assert manager.explicit is True
    with pytest.raises(transaction.interfaces.NoTransaction):
        manager.get()
    pending = manager.begin()
    pending.note("/path")
    pending.user = "alice"
    with pytest.raises(transaction.interfaces.AlreadyInTransaction):
        manager.begin()
    assert manager.isDoomed() is False
    real = manager.get()
    assert isinstance(real, transaction.Transaction)
    assert real.description == "/path"
    assert real.user == "alice"
    assert manager.get() is real
    pending.note("more")  # the pending transaction now forwards to the real one
    assert pending.description == "/path\nmore"
    committed = []
    real.addAfterCommitHook(committed.append)
    manager.commit()
    assert committed == [True]
    with pytest.raises(transaction.interfaces.NoTransaction):
        manager.get()


def test_an_unused_transaction_ends_without_work():
    """Committing or aborting a transaction nobody used ends it; a new one can begin."""
    manager = _tm.LazyTransactionManager()
    manager.begin().note("/health")
    manager.commit()
    with pytest.raises(transaction.interfaces.NoTransaction):
        manager.get()
    manager.begin()
    manager.abort()
    manager.begin()
    manager.doom()  # needs the transaction: it begins, doomed
    assert manager.isDoomed() is True
    with pytest.raises(transaction.interfaces.DoomedTransaction):
        manager.commit()
    manager.abort()


def test_synchronizers_see_every_transaction_they_are_registered_in():
    """A synchronizer registered while the transaction is pending sees it begin and complete."""
    manager = _tm.LazyTransactionManager()
    synch = _Synch()
    manager.begin()
    manager.registerSynch(synch)
    real = manager.get()
    manager.commit()
    assert synch.events == [("new", real), ("before", real), ("after", real)]


def test_pyramid_tm_with_the_lazy_manager():
    """Through pyramid_tm: unused transactions, committed work, aborted work on errors and 4xx."""
    done = []

    def quiet(request):
        return {"manager": type(request.tm).__name__}

    def work(request):
        request.tm.get().addAfterCommitHook(lambda status: done.append(("commit", status)))
        request.tm.get().addAfterAbortHook(lambda: done.append(("abort",)))
        if request.params.get("fail") == "400":
            raise HTTPBadRequest
        if request.params.get("fail") == "500":
            raise RuntimeError
        return {"description": request.tm.get().description}

    def configure(config):
        config.add_settings({"tm.manager_hook": _tm.explicit_manager})
        config.add_route("quiet", "/quiet")
        config.add_view(quiet, route_name="quiet", renderer="json")
        config.add_route("work", "/work")
        config.add_view(work, route_name="work", renderer="json")

    client = webtest.TestApp(testing.make_app({}, configure=configure))
    assert client.get("/quiet").json == {"manager": "LazyTransactionManager"}
    assert client.get("/work").json == {"description": "/work"}
    assert done == [("commit", True)]
    client.get("/work", params={"fail": "400"}, status=400)
    assert done[1:] == [("abort",)]
    with pytest.raises(RuntimeError):  # not turned into a response by this test application
        client.get("/work", params={"fail": "500"})
    assert done[2:] == [("abort",)]
