"""The local stack's mail catcher: an SMTP server on loopback (aiosmtpd)
that accepts every message and keeps it as a file under the given folder
(`.stack/mail/<nanoseconds>-<id>.eml`, written whole then renamed), with
the envelope's sender and recipients as `X-Envelope-From`/`X-Envelope-To`
headers in front.

    python scripts/mailcatcher.py DIR PORT
"""

import pathlib
import sys
import threading
import time
import uuid

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        head = (
            f"X-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(head + content)
        tmp.rename(self.folder / name)
        return "250 Message accepted for delivery"


def main() -> None:
    folder, port = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    controller = Controller(Keep(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"mail catcher on 127.0.0.1:{port}, keeping messages in {folder}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
