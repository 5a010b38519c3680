"""The README stays true: its Python examples run and emit what they say, its commands exist and work."""

from __future__ import annotations

import asyncio
import re
import shlex
import socket
import subprocess
import time
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.test import Client

from statsd_instrument.cli import COMMANDS
from statsd_instrument.testing import capture
from tests.helpers import free_port, python_bin

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    """The fenced blocks of one language, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.S | re.M)


def commands() -> list[list[str]]:
    """Every command line of the sh blocks (continuations joined, comments dropped), split like a shell."""
    lines = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(shlex.split(line))
    return lines


def cli_help(sub: str) -> str:
    out = subprocess.run(
        [python_bin("statsd-instrument"), sub, "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def asgi_get(app, path: str) -> int:
    """One GET through an ASGI app, as a server would drive it; the response status."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_quickstart_has_exactly_the_two_commands():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", quickstart, flags=re.S)
    assert [line.split("#")[0].split() for line in block.strip().splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]


def test_python_examples_run_and_emit_what_they_say():
    class SomeClass:
        def fetch(self):
            return "fetched"

    from flask import Flask

    flask_app = Flask("shop")
    flask_app.add_url_rule("/user/<int:id>", "user", lambda id: f"user {id}")
    starlette_app = Starlette(routes=[Route("/item/{n:int}", lambda request: PlainTextResponse("item"))])
    namespace = {
        "SomeClass": SomeClass,
        "app": flask_app,
        "starlette_app": starlette_app,
        "__name__": "readme",
    }
    with capture() as cap:
        for block in blocks("python"):
            exec(compile(block, "README.md", "exec"), namespace)
        assert SomeClass().fetch() == "fetched"
        response = Client(namespace["app"]).get("/user/7")
        assert response.status_code == 200 and response.get_data() == b"user 7"
        response.close()  # a server closes the body: that ends the request and sends its metrics
        assert asgi_get(namespace["asgi_app"], "/item/3") == 200

    cap.assert_emitted("orders_total", type="c", tags={"status": "paid"})
    assert cap.assert_emitted("db_query_seconds", type="ms").value == 12.5
    assert [r.value for r in cap.filter("temperature_celsius")] == [0.0, -5.0]
    cap.assert_emitted("render_seconds", type="ms")
    cap.assert_emitted("signups_total", type="c", value=1, tags={"outcome": "success"})
    cap.assert_emitted("fetch_seconds", type="ms", tags={"outcome": "success"})
    cap.assert_emitted("request_count", tags={"endpoint": "/user/<int:id>", "status": "200"})
    cap.assert_emitted("request_count", tags={"endpoint": "/item/{n:int}", "status": "200"})


@pytest.mark.e2e
def test_cli_commands_exist_and_take_the_flags_shown():
    shown = [c for c in commands() if c[0].endswith("statsd-instrument")]
    assert {c[1] for c in shown} >= {"exporter", "check-mapping", "explain", "suggest-mapping"}
    for command in shown:
        assert command[1] in COMMANDS, command
        help_text = cli_help(command[1])
        for flag in (arg.split("=")[0] for arg in command[2:] if arg.startswith("--")):
            assert flag in help_text, f"{flag} is not an option of {command[1]}"


@pytest.mark.e2e
def test_make_targets_and_demo_flags_exist():
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, flags=re.M).group(1).split()
    demo_help = cli_help("demo")
    for command in (c for c in commands() if c[0] == "make"):
        assert command[1] in phony, command
        for arg in command[2:]:
            variable, _, value = arg.partition("=")
            assert f"$({variable})" in makefile, arg
            for flag in (a for a in shlex.split(value) if a.startswith("--")):
                assert flag in demo_help, f"{flag} is not an option of demo"


def test_compose_command_names_files_that_exist():
    (compose,) = [c for c in commands() if c[:2] == ["docker", "compose"]]
    files = [compose[i + 1] for i, arg in enumerate(compose) if arg == "-f"]
    assert files == ["docker-compose.yml", "docker-compose-infra.yml"]
    assert all((ROOT / f).is_file() for f in files)


@pytest.mark.e2e
@pytest.mark.parametrize("sub", ["check-mapping", "explain"])
def test_mapping_commands_succeed_as_written(sub):
    command = next(c for c in commands() if c[0].endswith("statsd-instrument") and c[1] == sub)
    out = subprocess.run(
        [python_bin("statsd-instrument"), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    if sub == "explain":
        assert "http_requests_total" in out.stdout


@pytest.mark.e2e
def test_suggest_mapping_as_written_proposes_rules_that_check_clean(tmp_path):
    (command,) = [c for c in commands() if c[0].endswith("statsd-instrument") and c[1] == "suggest-mapping"]
    port = free_port(socket.SOCK_DGRAM)
    args = [a.replace("127.0.0.1:8126", f"127.0.0.1:{port}").replace("300", "3") for a in command[1:]]
    args = [str(ROOT / a) if a == "exporter-mapping.yml" else a for a in args]
    proc = subprocess.Popen(
        [python_bin("statsd-instrument"), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline and proc.poll() is None:
                for user in ("ann", "bob"):
                    sock.sendto(f"shop.cart.{user}.items:1|c".encode(), ("127.0.0.1", port))
                time.sleep(0.05)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    proposed = (tmp_path / "proposed.yml").read_text()
    assert "shop.cart.*.items" in proposed
    (check,) = [c for c in commands() if c[1:] == ["check-mapping", "proposed.yml"]]
    out = subprocess.run(
        [python_bin("statsd-instrument"), *check[1:]], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
