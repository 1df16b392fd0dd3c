"""One logging path: Python ``logging`` to QgsMessageLog, and user messages to the message bar.

The plugin installs :class:`QgsMessageLogHandler` on the package logger at load and removes it at
unload, so every module just does ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging

from qgis.core import Qgis, QgsMessageLog

from ..__about__ import PLUGIN_PACKAGE, __title__

_LEVELS = (
    (logging.ERROR, Qgis.MessageLevel.Critical),
    (logging.WARNING, Qgis.MessageLevel.Warning),
    (logging.INFO, Qgis.MessageLevel.Info),
)


def qgis_level(levelno: int) -> Qgis.MessageLevel:
    for threshold, level in _LEVELS:
        if levelno >= threshold:
            return level
    return Qgis.MessageLevel.Info


class QgsMessageLogHandler(logging.Handler):
    """Forwards log records to QGIS's Log Messages panel under the plugin's tab.

    QgsMessageLog is thread-safe, so worker threads (tasks) may log through it.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            QgsMessageLog.logMessage(self.format(record), __title__, qgis_level(record.levelno))
        except Exception:  # logging must never take the plugin down
            self.handleError(record)


def package_logger() -> logging.Logger:
    return logging.getLogger(PLUGIN_PACKAGE)


def install_log_handler() -> QgsMessageLogHandler:
    handler = QgsMessageLogHandler()
    logger = package_logger()
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def remove_log_handler(handler: QgsMessageLogHandler | None) -> None:
    if handler is not None:
        package_logger().removeHandler(handler)


def notify(iface, message: str, level: Qgis.MessageLevel = Qgis.MessageLevel.Info, duration: int = 8) -> None:
    """Tell the user (message bar) and keep a trace (message log) in one call.

    GUI thread only. ``duration`` 0 keeps the message until the user closes it.
    """
    QgsMessageLog.logMessage(message, __title__, level)
    if iface is not None:
        iface.messageBar().pushMessage(__title__, message, level, duration)
