"""Channels outside the server that carry a party's join link: e-mail over SMTP, SMS through an HTTP gateway.

A channel hands one message to one address and either returns or raises DeliveryFailed naming the
failure's class. Neither ever logs the message: it carries the party's credential.

The SMS gateway contract (docs/deploy.md): ``POST <MEDIATION_SMS_URL>`` with
``Authorization: Bearer <MEDIATION_SMS_TOKEN>`` and the JSON body ``{"to": "+<digits>", "text": "..."}``;
any 2xx means accepted for delivery. Redirects are not followed: they would carry the link elsewhere.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import re
import smtplib
import ssl
from typing import Protocol

import aiohttp

from server.settings import Secret, Settings


class DeliveryFailed(Exception):
    """A channel could not hand a message over; ``error`` is the failure's class, safe to store and show."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class Channel(Protocol):
    """Delivers one text message to one address of its kind."""

    name: str

    async def send(self, to: str, subject: str, text: str) -> None: ...


def _smtp_error(exc: BaseException) -> str:
    """The class of an SMTP failure; smtplib's exceptions are OSErrors, so they are told apart first."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "auth_failed"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "tls_unavailable"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "recipient_refused"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return "sender_refused"
    if isinstance(exc, smtplib.SMTPDataError):
        return "data_refused"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "disconnected"
    if isinstance(exc, smtplib.SMTPException):
        return "smtp_error"
    if isinstance(exc, ssl.SSLError):
        return "tls_failed"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "unreachable"


class MailChannel:
    """E-mail over SMTP (stdlib smtplib on a worker thread), STARTTLS and sign-in when configured."""

    name = "email"

    def __init__(self, *, host: str, port: int, user: str, password: Secret, sender: str, starttls: bool,
                 timeout: float) -> None:
        self._host, self._port, self._user, self._password = host, port, user, password
        self._sender, self._starttls, self._timeout = sender, starttls, timeout

    async def send(self, to: str, subject: str, text: str) -> None:
        message = email.message.EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(usegmt=True)
        message["Message-ID"] = email.utils.make_msgid(domain=self._sender.rpartition("@")[2])
        message.set_content(text)
        try:
            await asyncio.to_thread(self._send, message)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(_smtp_error(exc)) from None

    def _send(self, message: email.message.EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._user:
                smtp.login(self._user, self._password.reveal())
            smtp.send_message(message)


def sms_number(phone: str) -> str:
    """A phone number as the gateway takes it: "+" and digits only."""
    digits = re.sub(r"[^0-9]", "", phone)
    return f"+{digits}"


class SmsChannel:
    """SMS through an HTTP gateway: one JSON POST per message, authorised with a bearer secret."""

    name = "sms"

    def __init__(self, *, url: str, token: Secret, timeout: float) -> None:
        self._url, self._token, self._timeout = url, token, timeout

    async def send(self, to: str, subject: str, text: str) -> None:
        body = {"to": sms_number(to), "text": f"{subject}: {text}"}
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout)) as client:
                async with client.post(self._url, json=body, headers=headers, allow_redirects=False) as response:
                    if not 200 <= response.status < 300:
                        raise DeliveryFailed(f"http_{response.status}")
        except TimeoutError:
            raise DeliveryFailed("timeout") from None
        except aiohttp.ClientConnectionError:
            raise DeliveryFailed("unreachable") from None
        except aiohttp.ClientError:
            raise DeliveryFailed("gateway_error") from None


def outside_channels(settings: Settings) -> dict[str, Channel]:
    """The channels the settings turn on: none in the embedded default."""
    channels: dict[str, Channel] = {}
    if settings.smtp_host:
        channels["email"] = MailChannel(host=settings.smtp_host, port=settings.smtp_port, user=settings.smtp_user,
                                        password=settings.smtp_secret, sender=settings.smtp_from,
                                        starttls=settings.smtp_starttls, timeout=settings.delivery_timeout_seconds)
    if settings.sms_url:
        channels["sms"] = SmsChannel(url=settings.sms_url, token=settings.sms_token,
                                     timeout=settings.delivery_timeout_seconds)
    return channels
