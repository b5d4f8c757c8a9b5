"""The request bodies the SDK sends (no daemon): what Image and Pod turn into."""

from __future__ import annotations

import pytest

from cove import CoveError, Image, Pod


def test_pod_defaults_match_the_guide():
    body = Pod(image="reg/img:1").request_body()
    assert body == {"image": "reg/img:1", "ports": [], "cpu": 1, "memory": 128, "env": {}, "keep_warm_seconds": 600}


def test_pod_quantities_and_fields_pass_through():
    body = Pod(image=Image(base_image="r/i:2"), ports=[8888, 9000], cpu="1000m", memory="1Gi",
               env={"A": 1}, entrypoint=["start-notebook.py", "--x"], name="nb", keep_warm_seconds=-1).request_body()
    assert body == {
        "image": "r/i:2", "ports": [8888, 9000], "cpu": "1000m", "memory": "1Gi", "env": {"A": "1"},
        "keep_warm_seconds": -1, "entrypoint": ["start-notebook.py", "--x"], "name": "nb",
    }
    assert Pod(image="x", cpu=0.5, memory="512Mi").request_body()["cpu"] == 0.5


def test_pod_isolation_is_sent_only_when_given():
    assert "isolation" not in Pod(image="x").request_body()
    assert Pod(image="x", isolation="gvisor").request_body()["isolation"] == "gvisor"


def test_pod_disk_is_sent_only_when_given():
    assert "disk" not in Pod(image="x").request_body()
    assert Pod(image="x", disk="1Gi").request_body()["disk"] == "1Gi"
    assert Pod(image="x", disk=512).request_body()["disk"] == 512


def test_pod_log_limit_is_sent_only_when_given():
    body = Pod(image="x").request_body()
    assert "log_max_size" not in body and "log_max_files" not in body
    body = Pod(image="x", log_max_size="20Mi", log_max_files=2).request_body()
    assert (body["log_max_size"], body["log_max_files"]) == ("20Mi", 2)


def test_image_builder_methods_chain_and_keep_order(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\nrequests==2.31.0\n\nnumpy  # inline\n")
    img = (
        Image(base_image="base:1", python_version="python3.11")
        .add_commands(["apt-get update"])
        .add_python_packages(str(req))
        .with_envs(["A=1", "B=x=y"])
        .with_envs({"C": "3"})
        .with_envs("D=4")
    )
    assert img.build_request() == {
        "base_image": "base:1",
        "steps": [
            {"python_version": "3.11"},
            {"commands": ["apt-get update"]},
            {"python_packages": ["requests==2.31.0", "numpy"]},
        ],
        "env": {"A": "1", "B": "x=y", "C": "3", "D": "4"},
    }
    assert img.needs_build()
    assert not Image(base_image="b").with_envs({"X": "1"}).needs_build()


def test_constructor_steps_and_from_registry():
    img = Image(python_packages=["flask"], commands=["echo hi"], env_vars={"K": "V"})
    assert img.steps == [{"python_packages": ["flask"]}, {"commands": ["echo hi"]}]
    assert img.env_vars == {"K": "V"}
    assert Image.from_registry("ghcr.io/a/b:1").base_image == "ghcr.io/a/b:1"
    inst = Image()
    assert inst.from_registry("x/y:2", credentials={"username": "u", "password": "p"}) is inst
    assert inst.base_image_creds == {"username": "u", "password": "p"}
    assert Pod(image=inst).request_body()["registry_auth"] == {"username": "u", "password": "p"}
    assert Image(base_image="b", python_version="python3").build_request()["steps"] == [{"python_version": ""}]
    # A build from a private registry sends the credentials with the build request.
    built = Image().from_registry("x/y:2", credentials={"username": "u", "password": "p"}).add_commands(["true"])
    assert built.build_request()["registry_auth"] == {"username": "u", "password": "p"}
    assert "registry_auth" not in Pod(image=built).request_body("built:ref")


def test_bad_builder_input_is_a_clear_error(tmp_path):
    with pytest.raises(CoveError, match="is not KEY=VALUE"):
        Image().with_envs(["NOEQUALS"])
    with pytest.raises(CoveError, match="cannot read python packages from"):
        Image().add_python_packages(str(tmp_path / "missing.txt"))
    with pytest.raises(CoveError, match="a pod needs an image"):
        Pod().request_body()
