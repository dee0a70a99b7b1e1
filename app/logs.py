"""Structured (JSON) logs, with e-mail addresses masked."""

import json
import logging
import re
from datetime import UTC, datetime

# Any character that can stand in an address, non-ASCII included (internationalised
# addresses are masked like the others).
_ADDR = r"[^\s@<>()\[\]{},;:\"'`|\\/]"
_EMAIL = re.compile(rf"({_ADDR}){_ADDR}*@({_ADDR}+)")


def mask_emails(text: str) -> str:
    """`marie@example.fr` → `m***@example.fr`: enough to recognise, not to harvest."""
    return _EMAIL.sub(r"\1***@\2", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_emails(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = mask_emails(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_libraries()


def quiet_libraries() -> None:
    """Levels of the libraries whose chatter is noise, or worse, personal data."""
    # Access logs would print every URL; keep them at warning unless asked.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # A tick still running when the next is due is normal (the next one is skipped): no warning.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    # At debug level aiosqlite logs every statement with its parameters: names, addresses.
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
