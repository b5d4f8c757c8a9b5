"""Images: pulling and unpacking a multi-layer image from a loopback registry, against
`skopeo copy` + `tar -x` of the same layers; and a cached build's lookup."""
import json, os, shutil, subprocess, time

from common import COVE, summary

LAYERS = 4
LAYER_MB = 16


def make_multilayer(env):
    """An image of LAYERS layers of LAYER_MB MiB each (incompressible data, 64 files per
    layer), pushed to the bench registry; returns its reference."""
    layout = os.path.join(env.work, "multi")
    ref = f"127.0.0.1:{env.reg_port}/bench-multi:latest"
    subprocess.run(["umoci", "init", "--layout", layout], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:latest"], check=True)
    for i in range(LAYERS):
        bundle = os.path.join(env.work, f"multi-bundle-{i}")
        subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", bundle], check=True,
                       capture_output=True)
        d = os.path.join(bundle, "rootfs", f"layer{i}")
        os.makedirs(d)
        per_file = LAYER_MB * 1024 * 1024 // 64
        for f in range(64):
            with open(os.path.join(d, f"f{f}"), "wb") as out:
                out.write(os.urandom(per_file))
        subprocess.run(["umoci", "repack", "--image", f"{layout}:latest", bundle], check=True,
                       capture_output=True)
        shutil.rmtree(bundle)
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:latest",
                    f"docker://{ref}"], check=True)
    shutil.rmtree(layout)
    return ref


def skopeo_tar(env, ref):
    """`skopeo copy` to a dir, then `tar -x` of every layer into one rootfs: the floor."""
    d = os.path.join(env.work, "skopeo-dir")
    root = os.path.join(env.work, "skopeo-root")
    t0 = time.monotonic()
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{d}"],
                   check=True)
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    os.makedirs(root)
    for layer in manifest["layers"]:
        blob = os.path.join(d, layer["digest"].split(":", 1)[1])
        subprocess.run(["tar", "-xf", blob, "-C", root], check=True)
    ms = (time.monotonic() - t0) * 1000
    shutil.rmtree(d)
    shutil.rmtree(root)
    return ms


def bench_pull(env, runs=5):
    ref = make_multilayer(env)
    cove, floor = [], []
    for _ in range(runs):
        t0 = time.monotonic()
        env.cove("image", "pull", ref)
        cove.append((time.monotonic() - t0) * 1000)
        env.cove("image", "rm", ref)
        floor.append(skopeo_tar(env, ref))
    c, f = summary(cove), summary(floor)
    return {"image": f"{LAYERS} layers x {LAYER_MB} MiB", "cove_pull": c, "skopeo_tar": f,
            "ratio_p50": round(c["p50_ms"] / f["p50_ms"], 2)}


def bench_cached_build(env, runs=20):
    """`cove image build` of an unchanged build: the cache lookup through CLI and API."""
    args = ["image", "build", "--base", env.image, "--command", "echo cached > /built.txt"]
    env.cove(*args)
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        out = env.cove(*args)
        times.append((time.monotonic() - t0) * 1000)
        if "Using cached image" not in out:
            raise SystemExit(f"the second build was not cached: {out[-300:]}")
    return summary(times)
