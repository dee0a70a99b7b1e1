"""A counting SMTP sink (aiosmtpd) run as its own process by bench/dispatch.py.

    .venv/bin/python -m bench.smtp_sink --port P [--latency SECONDS]

Prints `READY` once listening, then answers one command per stdin line with one JSON line:
`count` → {"messages", "unique_message_ids", "recipients", "bytes"}; `reset`; `quit`.
It keeps no message, only counters and the set of Message-IDs (to spot a message sent twice).
`--latency` makes it wait that long before answering DATA, like a hosted relay over a real
network; it serves many connections at once (each waits on its own).
"""

import argparse
import asyncio
import json
import re
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class CountingHandler:
    def __init__(self, latency: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.latency = latency
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages = 0
            self.recipients = 0
            self.bytes = 0
            self.message_ids: set[bytes] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        head = content.split(b"\r\n\r\n", 1)[0]
        match = _MESSAGE_ID.search(head)
        with self.lock:
            self.messages += 1
            self.recipients += len(envelope.rcpt_tos)
            self.bytes += len(content)
            if match:
                self.message_ids.add(match.group(1))
        if self.latency:
            await asyncio.sleep(self.latency)
        return "250 Message accepted for delivery"

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {
                "messages": self.messages,
                "unique_message_ids": len(self.message_ids),
                "recipients": self.recipients,
                "bytes": self.bytes,
            }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering DATA")
    args = parser.parse_args()
    handler = CountingHandler(max(0.0, min(args.latency, 10.0)))
    controller = Controller(
        handler, hostname="127.0.0.1", port=args.port, decode_data=False, data_size_limit=None
    )
    controller.start()
    print("READY", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "count":
                print(json.dumps(handler.counts()), flush=True)
            elif command == "reset":
                handler.reset()
                print(json.dumps({"reset": True}), flush=True)
            elif command == "quit":
                break
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
