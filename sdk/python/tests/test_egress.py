"""Egress policies through the SDK: Pod(block_network=..., allow_list=...) and PodInstance.set_egress."""

from __future__ import annotations

import pytest

from cove import CoveBadRequestError, CoveConflictError, Pod

from conftest import HTTPD


def test_egress_fields_are_sent_only_when_given():
    body = Pod(image="x").request_body()
    assert "block_network" not in body and "allow_list" not in body
    assert Pod(image="x", block_network=True).request_body()["block_network"] is True
    assert Pod(image="x", allow_list=["10.0.0.0/8", "1.2.3.4/32"]).request_body()["allow_list"] == [
        "10.0.0.0/8",
        "1.2.3.4/32",
    ]


def test_egress_is_set_at_create_and_changed_live(daemon, busybox):
    inst = Pod(image=busybox, ports=[8000], entrypoint=HTTPD, keep_warm_seconds=-1, block_network=True).create()
    assert inst.ok, inst.error_msg
    daemon.note_veths()
    assert inst.container["block_network"] is True and inst.container["allow_list"] == []

    c = inst.set_egress(allow_list=["192.0.2.0/24"])
    assert (c["block_network"], c["allow_list"]) == (False, ["192.0.2.0/24"])
    with pytest.raises(CoveBadRequestError, match="cannot be used together"):
        inst.set_egress(block_network=True, allow_list=["192.0.2.0/24"])
    with pytest.raises(CoveBadRequestError, match="not a CIDR"):
        inst.set_egress(allow_list=["example.com"])
    assert inst.inspect()["allow_list"] == ["192.0.2.0/24"]
    c = inst.set_egress()
    assert (c["block_network"], c["allow_list"]) == (False, [])
    assert c["status"] == "RUNNING"

    assert inst.terminate()
    with pytest.raises(CoveConflictError, match="not running"):
        inst.set_egress(block_network=True)


def test_bad_allow_list_at_create_is_the_daemons_400(daemon, busybox):
    before = daemon.containers(all=True)
    inst = Pod(image=busybox, block_network=True, allow_list=["10.0.0.0/8"]).create()
    assert not inst.ok and inst.status_code == 400
    assert "cannot be used together" in inst.error_msg
    assert daemon.containers(all=True) == before
