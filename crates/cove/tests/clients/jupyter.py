#!/usr/bin/env python3
"""Drives a Jupyter server through Cove's gateway the way a browser does: cookies, Jupyter's
`_xsrf` token on every write, a kernel started over the REST API, and code run over the
kernel's WebSocket (with an Origin header, which Jupyter checks against Host).

    jupyter.py GATEWAY_HOST GATEWAY_PORT POD_HOST [--token TOKEN]

With --token the pod is an authorized one: a request without the token must be refused, and a
navigation to `/?auth_token=TOKEN` must answer a redirect that sets the gateway's cookie, which
then carries every later request (the REST calls and the WebSocket) like in a browser.
Prints what it did; exits non-zero (with the reason) on the first thing that is not right.
"""
import argparse, base64, http.client, json, os, socket, struct, sys, time, uuid

ap = argparse.ArgumentParser()
ap.add_argument("gateway_host")
ap.add_argument("gateway_port", type=int)
ap.add_argument("pod_host")
ap.add_argument("--token")
a = ap.parse_args()
origin = f"http://{a.pod_host}"
jar = {}


def fail(msg):
    sys.exit(f"jupyter client: {msg}")


def request(method, path, body=None, headers=None):
    h = {"Host": a.pod_host, "Origin": origin}
    if jar:
        h["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
    if "_xsrf" in jar and method not in ("GET", "HEAD"):
        h["X-XSRFToken"] = jar["_xsrf"]
    h.update(headers or {})
    c = http.client.HTTPConnection(a.gateway_host, a.gateway_port, timeout=60)
    c.request(method, path, body, h)
    r = c.getresponse()
    data = r.read()
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, val = v.split(";", 1)[0].split("=", 1)
            jar[name.strip()] = val.strip()
    c.close()
    return r, data


if a.token:
    r, _ = request("GET", "/api")
    if r.status != 401:
        fail(f"GET /api without the token answered {r.status}, not 401")
    nav = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
    r, _ = request("GET", f"/tree?auth_token={a.token}", headers=nav)
    if r.status != 302 or "cove_auth" not in jar:
        fail(f"navigating with ?auth_token= answered {r.status} with cookies {sorted(jar)}")
    if "auth_token" in (r.getheader("Location") or ""):
        fail(f"the redirect keeps the token in the URL: {r.getheader('Location')}")
    print("token exchanged for the gateway's cookie")

r, data = request("GET", "/api")
if r.status != 200 or "version" not in json.loads(data):
    fail(f"GET /api answered {r.status}: {data[:200]!r}")
print("server", json.loads(data)["version"])
if "_xsrf" not in jar:
    # Jupyter sets _xsrf on page loads; any handler that renders one will do.
    request("GET", "/login")
if "_xsrf" not in jar:
    fail(f"no _xsrf cookie from the server; cookies: {sorted(jar)}")

r, data = request("POST", "/api/kernels", json.dumps({"name": "python3"}), {"Content-Type": "application/json"})
if r.status != 201:
    fail(f"starting a kernel answered {r.status}: {data[:300]!r}")
kernel = json.loads(data)["id"]
print("kernel", kernel)

sock = socket.create_connection((a.gateway_host, a.gateway_port), timeout=60)
key = base64.b64encode(os.urandom(16)).decode()
cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
sock.sendall((f"GET /api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex} HTTP/1.1\r\n"
              f"Host: {a.pod_host}\r\nOrigin: {origin}\r\nCookie: {cookie}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    b = sock.recv(1)
    if not b:
        fail(f"the WebSocket handshake was cut: {head!r}")
    head += b
if not head.startswith(b"HTTP/1.1 101"):
    fail(f"the WebSocket handshake answered {head.splitlines()[0]!r}")


def send(obj):
    data = json.dumps(obj).encode()
    n = len(data)
    if n < 126:
        hdr = bytes([0x81, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x81, 0x80 | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", n)
    mask = os.urandom(4)
    sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def exact(n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            fail("the kernel's WebSocket closed")
        out += chunk
    return out


def recv():
    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", exact(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", exact(8))[0]
    return b0 & 0x0F, exact(n)


msg_id = uuid.uuid4().hex
send({"header": {"msg_id": msg_id, "username": "", "session": uuid.uuid4().hex,
                 "msg_type": "execute_request", "version": "5.3"},
      "parent_header": {}, "metadata": {}, "channel": "shell",
      "content": {"code": "print('hello from the kernel'); 6 * 7", "silent": False,
                  "store_history": True, "user_expressions": {}, "allow_stdin": False,
                  "stop_on_error": True}})
got = {}
deadline = time.monotonic() + 60
while "result" not in got and time.monotonic() < deadline:
    op, data = recv()
    if op != 1:
        continue
    m = json.loads(data)
    if m.get("parent_header", {}).get("msg_id") != msg_id:
        continue
    if m["msg_type"] == "stream":
        got["stream"] = got.get("stream", "") + m["content"]["text"]
    elif m["msg_type"] == "execute_result":
        got["result"] = m["content"]["data"]["text/plain"]
    elif m["msg_type"] == "error":
        fail(f"the kernel raised {m['content']['ename']}: {m['content']['evalue']}")
if got.get("stream", "").strip() != "hello from the kernel" or got.get("result") != "42":
    fail(f"the kernel answered {got}")
print("kernel ran the code:", got["result"])
sock.close()

r, _ = request("DELETE", f"/api/kernels/{kernel}")
if r.status != 204:
    fail(f"stopping the kernel answered {r.status}")
print("kernel stopped")
