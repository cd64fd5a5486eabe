"""An SMTP server for feedwatch's email tests (aiosmtpd), on 127.0.0.1.

    server.py DIR [--port N] [--tls starttls|implicit] [--auth USER PASSWORD]

Each message it accepts is written to DIR/mail-N.json: the envelope, the login it came
under, and the message as Python's email package reads it (headers decoded, the text and
HTML parts, any defects found). Every DATA command, accepted or not, adds its answer as a
line to DIR/attempts. The answer is read from DIR/answer at each DATA (e.g. "451 4.3.0 Try
again later"); without that file the message is accepted.

--tls starttls offers STARTTLS and requires it before MAIL; --tls implicit speaks TLS from
the first byte. Both use server.pem beside this script, issued by ca.pem for 127.0.0.1.
With --auth, AUTH is required (and only offered under TLS when TLS is on).

Prints "listening PORT" once it accepts connections, and stops when its stdin closes.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HERE = os.path.dirname(os.path.abspath(__file__))


class Recorder:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        answer = "250 OK"
        try:
            with open(os.path.join(self.folder, "answer")) as f:
                answer = f.read().strip() or answer
        except FileNotFoundError:
            pass
        with open(os.path.join(self.folder, "attempts"), "a") as f:
            f.write(answer + "\n")
        if not answer.startswith("250"):
            return answer
        raw = envelope.original_content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        plain = message.get_body(("plain",))
        html = message.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": session.auth_data if session.authenticated else None,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "raw": raw.decode("ascii", "backslashreplace"),
            "headers": [[name, str(value)] for name, value in message.items()],
            "content_type": message.get_content_type(),
            "text": plain.get_content() if plain is not None else None,
            "html": html.get_content() if html is not None else None,
            "defects": [repr(d) for d in message.defects]
            + [repr(d) for part in message.walk() for d in part.defects],
        }
        self.count += 1
        path = os.path.join(self.folder, "mail-%d.json" % self.count)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return answer


def tls_context():
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        os.path.join(HERE, "server.pem"), os.path.join(HERE, "server.key")
    )
    return context


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls", choices=["starttls", "implicit"])
    parser.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    args = parser.parse_args()
    # aiosmtpd warns of its own deprecated field on every login.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == tuple(args.auth)
        return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)

    handler = Recorder(args.folder)
    options = {}
    if args.tls == "starttls":
        options.update(tls_context=tls_context(), require_starttls=True)
    if args.auth:
        options.update(
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=args.tls is not None,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="feedwatch-test", **options),
        host="127.0.0.1",
        port=args.port,
        ssl=tls_context() if args.tls == "implicit" else None,
    )
    print("listening %d" % server.sockets[0].getsockname()[1], flush=True)
    # Runs until the test drops its end of stdin.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
