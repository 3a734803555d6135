"""Protocol abuse, with raw sockets: early talkers, improper pipelining (and proper pipelining that works),
command limits; and swaks (Debian's SMTP test client): a normal send, pipelining, a line over 1,000 octets."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from gwharness import GatewayFactory, Recorder, RunningGateway
from gwmail import RCPT, build, clean, parsed

GREETING_WAIT = 0.5


class RawClient:
    """A socket that says exactly what the test tells it, when the test tells it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.stream = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> bytes:
        """One whole reply (all its lines)."""
        lines = [self.stream.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(self.stream.readline())
        return b"".join(lines)

    def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        return self.stream.read()

    def close(self) -> None:
        self.stream.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def greeted(port: int) -> RawClient:
    client = RawClient(port)
    assert client.reply().startswith(b"220")
    return client


def test_an_early_talker_is_refused(downstream: Recorder, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(greet_pause=GREETING_WAIT)
    with RawClient(gateway.smtp_port) as client:
        client.send(b"EHLO bot.example\r\nMAIL FROM:<bot@good.gw.test>\r\n")  # without waiting for anything
        answer = client.rest()
    assert b"554 5.5.1 Protocol error: you talked before the greeting" in answer
    assert b"250" not in answer
    with RawClient(gateway.smtp_port) as client:  # a client that waits for the whole greeting is served
        first = client.stream.readline()
        assert first.startswith(b"220-")
        time.sleep(0.05)
        client.send(b"NOOP\r\n")  # still inside the pause: talking after the first line is early too
        assert b"554 5.5.1" in client.rest()
    with greeted(gateway.smtp_port) as client:
        client.send(b"EHLO client.gw.test\r\n")
        assert b"250-PIPELINING" in client.reply()


def test_commands_sent_ahead_where_no_group_is_allowed_close_the_session(gateway: RunningGateway,
                                                                         downstream: Recorder) -> None:
    with greeted(gateway.smtp_port) as client:  # EHLO ends a group: nothing may follow before its reply
        client.send(b"EHLO client.gw.test\r\nMAIL FROM:<alice@good.gw.test>\r\n")
        answer = client.rest()
    assert answer.startswith(b"554 5.5.0 Improper use of SMTP command pipelining: wait for the reply to EHLO")
    with greeted(gateway.smtp_port) as client:  # without EHLO there is no pipelining at all
        client.send(b"HELO client.gw.test\r\n")
        assert client.reply().startswith(b"250")
        client.send(b"MAIL FROM:<alice@good.gw.test>\r\nRCPT TO:<" + RCPT.encode() + b">\r\n")
        assert b"554 5.5.0" in client.rest()


def test_message_data_sent_before_the_354_is_not_taken(gateway: RunningGateway, downstream: Recorder) -> None:
    with greeted(gateway.smtp_port) as client:
        client.send(b"EHLO client.gw.test\r\n")
        client.reply()
        client.send(b"MAIL FROM:<alice@good.gw.test>\r\nRCPT TO:<" + RCPT.encode() + b">\r\nDATA\r\n"
                    + clean() + b".\r\n")
        assert client.reply().startswith(b"250")  # MAIL
        assert client.reply().startswith(b"250")  # RCPT
        answer = client.rest()
    assert answer.startswith(b"554 5.5.0 Improper use of SMTP command pipelining: wait for the reply to DATA")
    assert b"354" not in answer and b"queued" not in answer
    time.sleep(0.3)
    assert downstream.messages == []


def test_proper_pipelining_works(gateway: RunningGateway, downstream: Recorder) -> None:
    with greeted(gateway.smtp_port) as client:
        client.send(b"EHLO client.gw.test\r\n")
        assert b"PIPELINING" in client.reply()
        client.send(b"MAIL FROM:<alice@good.gw.test>\r\nRCPT TO:<" + RCPT.encode() + b">\r\n"
                    b"RCPT TO:<carol@acme.gw.test>\r\nDATA\r\n")  # one group, DATA last
        assert [client.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        client.send(clean() + b".\r\nQUIT\r\n")  # the end of data and the next command in one group
        assert client.reply().startswith(b"250 2.0.0 OK: queued as")
        assert client.reply().startswith(b"221")
    assert downstream.wait_for(1)[0].recipients == [RCPT, "carol@acme.gw.test"]


def test_unknown_commands_are_limited(downstream: Recorder, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(max_unknown_commands=3)
    with greeted(gateway.smtp_port) as client:
        client.send(b"HELP XYZZY\r\n")  # asking about an unknown command is not one
        assert client.reply().startswith(b"501 Supported commands:")
        for command in (b"XYZZY", b"GET / HTTP/1.0", b"\x7fBOGUS"):
            client.send(command + b"\r\n")
            assert client.reply().startswith(b"500 5.5.2 Error: command")
        client.send(b"PLUGH\r\n")
        assert client.rest() == b"421 4.7.0 Too many unrecognized commands, closing\r\n"


def test_junk_commands_are_limited_and_count_from_zero_after_a_message(downstream: Recorder,
                                                                         start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(max_junk_commands=3)
    with greeted(gateway.smtp_port) as client:
        client.send(b"EHLO client.gw.test\r\n")  # junk 1
        client.reply()
        for _ in range(2):  # junk 2, 3
            client.send(b"NOOP\r\n")
            assert client.reply().startswith(b"250")
        for command in (b"MAIL FROM:<alice@good.gw.test>", b"RCPT TO:<" + RCPT.encode() + b">", b"DATA"):
            client.send(command + b"\r\n")
            client.reply()
        client.send(clean() + b".\r\n")
        assert client.reply().startswith(b"250 2.0.0")
        for _ in range(3):  # the count started again
            client.send(b"RSET\r\n")
            assert client.reply().startswith(b"250")
        client.send(b"NOOP\r\n")
        assert client.rest() == b"421 4.7.0 Too many commands without a message, closing\r\n"


def test_commands_per_session_are_limited(downstream: Recorder, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(max_commands=4)
    with greeted(gateway.smtp_port) as client:
        client.send(b"EHLO client.gw.test\r\n")
        client.reply()
        for _ in range(3):
            client.send(b"MAIL FROM:<alice@good.gw.test>\r\n")
            client.reply()
        client.send(b"RSET\r\n")
        assert client.rest() == b"421 4.7.0 Too many commands in one session, closing\r\n"


def test_plaintext_sent_after_starttls_is_refused(downstream: Recorder, start_gateway: GatewayFactory,
                                                  tmp_path: Path) -> None:
    from test_gateway import _self_signed

    cert, key = _self_signed(tmp_path)
    gateway = start_gateway(tls_cert=cert, tls_key=key)
    with greeted(gateway.smtp_port) as client:
        client.send(b"EHLO client.gw.test\r\n")
        assert b"STARTTLS" in client.reply()
        client.send(b"STARTTLS\r\nMAIL FROM:<injected@good.gw.test>\r\n")  # CVE-2011-0411 style injection
        assert client.rest().startswith(b"554 5.5.0")
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False
    with greeted(gateway.smtp_port) as client:  # STARTTLS done properly still works
        client.send(b"EHLO client.gw.test\r\n")
        client.reply()
        client.send(b"STARTTLS\r\n")
        assert client.reply().startswith(b"220")
        with context.wrap_socket(client.sock, server_hostname="mx") as tls:
            tls.sendall(b"EHLO client.gw.test\r\n")
            assert b"250" in tls.recv(4096)


# --- swaks ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def swaks() -> str:
    found = shutil.which("swaks")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("swaks is required in CI (scripts/test installs the swaks package)")
        pytest.skip("swaks not installed (apt-get install swaks)")
    return found


def run_swaks(swaks: str, port: int, message: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([swaks, "--server", f"127.0.0.1:{port}", "--helo", "client.gw.test", "--from",
                           "alice@good.gw.test", "--to", RCPT, "--data", f"@{message}", "--timeout", "30", *extra],
                          capture_output=True, text=True, timeout=60, check=False)


def test_swaks_sends_a_normal_message(gateway: RunningGateway, downstream: Recorder, swaks: str,
                                      tmp_path: Path) -> None:
    message = tmp_path / "clean.eml"
    message.write_bytes(clean())
    result = run_swaks(swaks, gateway.smtp_port, message)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  250 2.0.0 OK: queued as" in result.stdout
    [delivered] = downstream.wait_for(1)
    assert parsed(delivered.data)["X-Mailwarden-Verdict"] == "deliver"
    assert clean() in delivered.data  # swaks adds a line end before the final dot


def test_swaks_pipelines(gateway: RunningGateway, downstream: Recorder, swaks: str, tmp_path: Path) -> None:
    message = tmp_path / "clean.eml"
    message.write_bytes(clean("<piped@good.gw.test>"))
    result = run_swaks(swaks, gateway.smtp_port, message, "--pipeline")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PIPELINING" in result.stdout and "queued as" in result.stdout
    assert parsed(downstream.wait_for(1)[0].data)["Message-ID"] == "<piped@good.gw.test>"


def test_swaks_sends_a_line_over_1000_octets(gateway: RunningGateway, downstream: Recorder, swaks: str,
                                              tmp_path: Path) -> None:
    long_line = "x" * 4000 + " " + "y" * 3000
    raw = build("Alice <alice@good.gw.test>", "Long line", f"Start\r\n{long_line}\r\nEnd")
    message = tmp_path / "long.eml"
    message.write_bytes(raw)
    result = run_swaks(swaks, gateway.smtp_port, message)
    assert result.returncode == 0, result.stdout + result.stderr
    delivered = downstream.wait_for(1)[0].data
    assert long_line.encode() in delivered and raw in delivered
