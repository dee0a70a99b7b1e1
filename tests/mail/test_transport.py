"""SMTP transports against a real aiosmtpd server: plain, STARTTLS, implicit TLS, AUTH."""

import datetime as dt
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.mail.message import Outgoing
from app.mail.transport import (
    FileTransport,
    PermanentError,
    RecipientRejected,
    SmtpTransport,
    TransientError,
    transport_from_url,
)
from tests.smtp_sink import SinkHandler, free_port, smtp_sink


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def message(to: str = "marie@example.fr") -> Outgoing:
    msg = EmailMessage()
    msg["From"] = "shop@example.test"
    msg["To"] = to
    msg["Subject"] = "Votre avis"
    msg["Message-ID"] = "<t.1@example.test>"
    msg.set_content("Bonjour")
    return Outgoing("<t.1@example.test>", msg.as_bytes())


@pytest.fixture
def tls_sink(tls_context: ssl.SSLContext) -> Iterator[tuple[SinkHandler, int, str]]:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=tls_context)
    controller.start()
    yield handler, port, "smtps"
    controller.stop()


@pytest.fixture
def starttls_sink(tls_context: ssl.SSLContext) -> Iterator[tuple[SinkHandler, int, str]]:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=tls_context, require_starttls=True
    )
    controller.start()
    yield handler, port, "smtp+starttls"
    controller.stop()


@pytest.mark.parametrize("sink_name", ["tls_sink", "starttls_sink"])
async def test_encrypted_transports_deliver(sink_name: str, request: pytest.FixtureRequest) -> None:
    handler, port, scheme = request.getfixturevalue(sink_name)
    transport = transport_from_url(f"{scheme}://127.0.0.1:{port}?verify=false", 5)
    await transport.send(message(), "shop@example.test", "marie@example.fr")
    await transport.close()
    assert [m["Subject"] for m in handler.messages] == ["Votre avis"]


async def test_starttls_server_refuses_plain_smtp(
    starttls_sink: tuple[SinkHandler, int, str],
) -> None:
    _, port, _ = starttls_sink
    transport = SmtpTransport(f"smtp://127.0.0.1:{port}", 5)
    with pytest.raises(PermanentError):
        await transport.send(message(), "shop@example.test", "marie@example.fr")


async def test_certificate_is_verified_by_default(tls_sink: tuple[SinkHandler, int, str]) -> None:
    _, port, _ = tls_sink
    transport = SmtpTransport(f"smtps://127.0.0.1:{port}", 5)
    with pytest.raises(TransientError):
        await transport.send(message(), "shop@example.test", "marie@example.fr")


async def test_auth_and_connection_reuse() -> None:
    with smtp_sink(credentials=("relance", "s3cret")) as (handler, port):
        transport = SmtpTransport(f"smtp://relance:s3cret@127.0.0.1:{port}", 5)
        for n in range(3):
            await transport.send(
                message(f"c{n}@example.fr"), "shop@example.test", f"c{n}@example.fr"
            )
        await transport.close()
    assert [m["To"] for m in handler.messages] == [f"c{n}@example.fr" for n in range(3)]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("451 4.3.0 Try later", TransientError),
        ("550 5.1.1 No such user", RecipientRejected),
        ("553 5.1.3 Bad address", RecipientRejected),
        ("554 5.7.1 Relay denied", PermanentError),
    ],
)
async def test_rcpt_answers_are_classified(reply: str, error: type[Exception]) -> None:
    with smtp_sink() as (handler, port):
        handler.rcpt_reply = reply
        transport = SmtpTransport(f"smtp://127.0.0.1:{port}", 5)
        with pytest.raises(error):
            await transport.send(message(), "shop@example.test", "marie@example.fr")
        await transport.close()


async def test_wrong_password_is_permanent() -> None:
    with smtp_sink(credentials=("relance", "s3cret")) as (_, port):
        transport = SmtpTransport(f"smtp://relance:nope@127.0.0.1:{port}", 5)
        with pytest.raises(PermanentError, match="535"):
            await transport.send(message(), "shop@example.test", "marie@example.fr")


async def test_connection_refused_is_transient() -> None:
    transport = SmtpTransport(f"smtp://127.0.0.1:{free_port()}", 2)
    with pytest.raises(TransientError):
        await transport.send(message(), "shop@example.test", "marie@example.fr")


async def test_file_transport_paths(tmp_path: Path) -> None:
    relative = transport_from_url("file:outbox", 5)
    absolute = transport_from_url(f"file://{tmp_path}/mail", 5)
    assert isinstance(relative, FileTransport) and relative.directory == Path("outbox")
    assert isinstance(absolute, FileTransport) and absolute.directory == tmp_path / "mail"
    await absolute.send(message(), "shop@example.test", "marie@example.fr")
    assert [p.name for p in (tmp_path / "mail").iterdir()] == ["t.1_example.test.eml"]
