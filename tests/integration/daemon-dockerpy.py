#!/usr/bin/python3
# docker-py (Debian's python3-docker) as a third client of skiffd, run by daemon-dockerpy.test.ts with
# DOCKER_HOST=unix://<socket> and the busybox image already loaded. It drives the API the way Python tools do and
# prints one JSON summary on stdout for the test to assert on. Each step has a deadline (SIGALRM): a hung stream
# fails with the step's name instead of hanging the test.
import json
import signal
import sys
import time
from contextlib import contextmanager

import docker

summary = {"steps": []}
current = {"step": "start"}


def on_alarm(signum, frame):
    raise TimeoutError(f"step {current['step']!r} timed out")


signal.signal(signal.SIGALRM, on_alarm)


@contextmanager
def step(name, seconds=30):
    current["step"] = name
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
    summary["steps"].append(name)


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, (bytes, bytearray)) else b


def main():
    start = int(time.time()) - 1

    with step("from_env"):
        client = docker.from_env(timeout=60)
        summary["docker_py"] = docker.__version__
        summary["api_version"] = client.api.api_version

    with step("version"):
        v = client.version()
        summary["version"] = {k: v.get(k) for k in ("ApiVersion", "MinAPIVersion", "Version", "Os", "Arch")}

    with step("ping"):
        summary["ping"] = client.ping()

    with step("info"):
        info = client.info()
        summary["info"] = {k: info.get(k) for k in ("OSType", "Images", "Containers")}

    with step("images"):
        images = client.images.list()
        summary["images"] = sorted(t for i in images for t in i.tags)
        img = client.images.get("busybox")
        summary["image"] = {"id": img.id, "tags": img.tags, "short_id": img.short_id}
        try:
            client.images.get("no-such-image:latest")
            summary["image_missing"] = "found"
        except docker.errors.ImageNotFound as e:
            summary["image_missing"] = {"status": e.status_code, "explanation": e.explanation}

    with step("run_remove"):
        out = client.containers.run("busybox", "echo hi", remove=True)
        summary["run"] = {"type": type(out).__name__, "output": text(out)}
        summary["after_run_remove"] = len(client.containers.list(all=True))

    with step("run_error"):
        try:
            client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 3"], remove=True)
            summary["run_error"] = "no error"
        except docker.errors.ContainerError as e:
            summary["run_error"] = {"exit_status": e.exit_status, "stderr": text(e.stderr)}

    with step("run_detach"):
        c = client.containers.run(
            "busybox",
            ["sh", "-c", "echo one; echo two >&2; echo three; exec sleep 300"],
            detach=True,
            name="pyc",
            labels={"suite": "dockerpy"},
            environment={"GREETING": "hello"},
        )
        c.reload()
        summary["detached"] = {
            "id": c.id,
            "name": c.name,
            "status": c.status,
            "labels": c.labels,
            "image_tags": c.image.tags,
        }
        listed = client.containers.list(filters={"label": "suite=dockerpy"})
        summary["listed"] = [x.name for x in listed]

    with step("logs_stream"):
        buf = b""
        stream = c.logs(stream=True, follow=True)
        for chunk in stream:
            buf += chunk
            if b"three\n" in buf and b"two\n" in buf:
                break
        stream.close()
        summary["logs_stream"] = text(buf)
        summary["logs_stdout"] = text(c.logs(stdout=True, stderr=False))
        summary["logs_stderr"] = text(c.logs(stdout=False, stderr=True))

    with step("exec_run"):
        r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        summary["exec"] = {"exit_code": r.exit_code, "output": text(r.output)}
        r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
        summary["exec_demux"] = {"exit_code": r.exit_code, "stdout": text(r.output[0]), "stderr": text(r.output[1])}
        r = c.exec_run("sh -c 'echo $GREETING; pwd'", workdir="/tmp", user="nobody")
        summary["exec_env"] = {"exit_code": r.exit_code, "output": text(r.output)}
        r = c.exec_run(["sh", "-c", "id -u; pwd"], workdir="/tmp", user="65534")
        summary["exec_user"] = {"exit_code": r.exit_code, "output": text(r.output)}

    with step("stop"):
        c.stop(timeout=1)
        waited = c.wait(timeout=30)
        c.reload()
        summary["stopped"] = {"status": c.status, "wait": waited, "exit_code": c.attrs["State"]["ExitCode"]}

    with step("remove"):
        c.remove()
        try:
            client.containers.get("pyc")
            summary["after_remove"] = "found"
        except docker.errors.NotFound as e:
            summary["after_remove"] = {"status": e.status_code, "explanation": e.explanation}

    with step("events"):
        until = int(time.time()) + 1
        events = []
        for ev in client.events(since=start, until=until, decode=True):
            actor = ev.get("Actor") or {}
            events.append(
                {
                    "Type": ev.get("Type"),
                    "Action": ev.get("Action"),
                    "id": actor.get("ID"),
                    "name": (actor.get("Attributes") or {}).get("name"),
                    "time": ev.get("time"),
                }
            )
        summary["events"] = events
        filtered = list(
            client.events(
                since=start, until=until, decode=True, filters={"container": summary["detached"]["id"], "event": "die"}
            )
        )
        summary["events_filtered"] = [e.get("Action") for e in filtered]

    client.close()


try:
    main()
    summary["ok"] = True
except Exception as e:  # the test prints the summary: which step failed, and how
    summary["ok"] = False
    summary["failed_step"] = current["step"]
    summary["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(summary))
sys.exit(0 if summary["ok"] else 1)
