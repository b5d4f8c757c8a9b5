"""Authorized pods through the SDK: ``Pod(authorized=True)`` against a real daemon. Its URL
answers only requests with a token of the pod's workspace (or the admin token), as a Bearer
header or ``?auth_token=``; anything else is a 401."""

from __future__ import annotations

import json
import os
import urllib.request

from cove import Client, Config, Pod

from conftest import HTTPD, http_get, wait_until


def make_token(daemon, name: str, workspace: str) -> str:
    """``POST /v1/tokens`` with the admin token; returns the new secret."""
    req = urllib.request.Request(
        f"{daemon.api_url}/v1/tokens",
        data=json.dumps({"name": name, "workspace": workspace}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {daemon.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["secret"]


def get(daemon, url: str, token: str = "", query: str = "") -> int:
    host, port = daemon.gateway.rsplit(":", 1)
    netloc = url.split("://", 1)[1].rstrip("/")
    req = urllib.request.Request(f"http://{host}:{port}/{query}", headers={"Host": netloc})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_authorized_pod_needs_a_token_of_its_workspace(daemon, busybox):
    suffix = os.getpid()
    mine = make_token(daemon, f"sdk-auth-{suffix}", "sdk-auth")
    theirs = make_token(daemon, f"sdk-other-{suffix}", "sdk-other")
    client = Client(Config(api_url=daemon.api_url, token=mine))
    pod = Pod(image=busybox, ports=[8000], entrypoint=HTTPD, authorized=True, client=client)
    assert pod.request_body()["authorized"] is True
    inst = pod.create(quiet=True)
    assert inst.ok, inst.error_msg
    try:
        url = inst.url
        # Its owner's token gets through once httpd listens; the admin token too.
        wait_until("the pod to answer its owner", 30, lambda: get(daemon, url, mine) == 200)
        assert get(daemon, url, daemon.token) == 200
        assert get(daemon, url, query=f"?auth_token={mine}") == 200
        # Without a token, or with another workspace's: 401.
        assert get(daemon, url) == 401
        assert get(daemon, url, theirs) == 401
        assert get(daemon, url, query=f"?auth_token={theirs}") == 401
        assert http_get(url, daemon.gateway)[0] == 401
        # The other workspace does not even see it.
        other = Client(Config(api_url=daemon.api_url, token=theirs))
        assert inst.container_id not in [c["id"] for c in other.request("GET", "/v1/containers")]
    finally:
        assert inst.terminate()
