# Logger: the interpreter's log level, and records logged on the host. Every record a tool logs through
# Python's logging (any logger name) goes to the local side's onLog, with its call id.
import logging


def log(cx, level, message, name):
    logging.getLogger(name).log(logging.getLevelName(level.upper()), '%s', message)
    return None


def setLevel(cx, level):
    # Records below it are not sent at all.
    logging.root.setLevel(level.upper())
    return logging.getLevelName(logging.root.level)
