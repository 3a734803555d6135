"""Links: where they really go, against what the reader is shown.

IP-literal hosts, anchor text that shows another site than the link, shorteners and open redirects
that hide the destination, pages on free hosting and cloud storage, punycode hosts, credentials in
the URL, forms that post away. Nothing is fetched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from mailwarden.detection import fold, host_matches
from mailwarden.urls import normalize, public_suffix

if TYPE_CHECKING:
    from mailwarden.message import Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal
    from mailwarden.urls import Url

NAME = "urls"
SIGNALS = (
    "url.ip_host",
    "url.deceptive_anchor",
    "url.shortener",
    "url.open_redirect",
    "url.free_hosting",
    "url.cloud_hosted_login",
    "url.punycode_host",
    "url.userinfo",
    "url.form_action",
    "url.abused_tld",
    "url.nonstandard_port",
)

_SHOWN_DOMAIN = re.compile(r"(?:https?://)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?=[/:?#\s]|$)",
                           re.IGNORECASE)


def _shown_host(anchor_text: str) -> str | None:
    """The host an anchor text displays as if it were the destination (a URL or bare domain)."""
    text = anchor_text.strip()
    if not text or (" " in text.strip() and not text.lower().startswith(("http", "www."))):
        return None
    match = _SHOWN_DOMAIN.match(text)
    if not match:
        return None
    host = match.group(1).lower()
    if not public_suffix(host) or public_suffix(host) == host:
        return None
    return host


def _deceptive_anchors(urls: list[Url], context: Context) -> list[Signal]:
    for url in urls:
        if url.origin != "href" or not url.anchor_text:
            continue
        shown = _shown_host(url.anchor_text)
        if shown is None:
            continue
        shown_url = normalize("http://" + shown, "href")
        if shown_url is None or shown_url.registrable_domain == url.registrable_domain:
            continue
        if url.host in context.data.shorteners or _is_tracking_redirect(url):
            continue
        # A full URL shown as text is a stronger claim than a bare domain name in a newsletter.
        factor = 1.0 if url.anchor_text.lower().startswith(("http", "www.")) else 0.5
        return [context.signal("url.deceptive_anchor",
                               f"link text shows {shown} but goes to {url.host}",
                               factor=factor, shown=shown, actual=url.url)]
    return []


def _is_tracking_redirect(url: Url) -> bool:
    """Click-tracking hosts of mail senders (the shown link is usually their customer's)."""
    host = url.host
    return host.startswith(("click.", "links.", "link.", "track.", "email.", "e.", "t.", "clicks.", "url")) \
        or any(part in host for part in ("sendgrid", "mailchimp", "list-manage", "mcusercontent", "hubspotlinks",
                                         "mandrillapp", "mailgun", "sparkpost", "awstrack", "ct.sendgrid",
                                         "safelinks.protection.outlook.com", "urldefense"))


def _redirect_target(url: Url, context: Context) -> str | None:
    if url.host not in context.data.redirect_hosts and url.registrable_domain not in context.data.redirect_hosts:
        return None
    try:
        query = parse_qsl(urlsplit(url.url).query)
    except ValueError:
        return None
    for key, value in query:
        if key.lower() in context.data.redirect_parameters and value.lower().startswith(("http://", "https://", "//")):
            target = normalize(value, "href")
            if target and target.registrable_domain != url.registrable_domain:
                return target.host
    return None


def _credential_context(message: Message, context: Context) -> bool:
    return any(doc.has_password_input for doc in message.html) or bool(
        context.data.lure("credential").matches(_folded_subject_and_text(message), limit=1))


def _folded_subject_and_text(message: Message) -> str:
    return fold(message.subject + "\n" + message.text[:20000])


def _per_url(urls: list[Url], message: Message, context: Context) -> list[Signal]:
    signals: list[Signal] = []
    seen: set[str] = set()
    data = context.data

    def once(signal_id: str, detail: str, **evidence: Any) -> None:
        if signal_id not in seen:
            seen.add(signal_id)
            signals.append(context.signal(signal_id, detail, **evidence))

    hosted: list[str] = []
    for url in urls:
        if url.is_ip:
            once("url.ip_host", f"link to a bare IP address {url.host}", url=url.url)
        if url.has_userinfo:
            once("url.userinfo", f"link hides its host behind user info: {url.raw[:80]}", url=url.url)
        if url.host.startswith("xn--") or ".xn--" in url.host:
            once("url.punycode_host", f"link to internationalised host {url.host_unicode} ({url.host})",
                 host=url.host, unicode=url.host_unicode)
        if url.registrable_domain in data.shorteners or url.host in data.shorteners:
            once("url.shortener", f"link through URL shortener {url.host}", url=url.url)
        target = _redirect_target(url, context)
        if target:
            once("url.open_redirect", f"link bounces through {url.host} to {target}", url=url.url, target=target)
        hosting = host_matches(url.host, data.free_hosting)
        if hosting:
            hosted.append(url.host)
            once("url.free_hosting", f"link to a page on free hosting / cloud storage {url.host}",
                 host=url.host, service=hosting)
        if url.origin == "form" and not url.is_ip:
            once("url.form_action", f"the message contains a form that posts to {url.host}", url=url.url)
        suffix = public_suffix(url.host)
        if suffix in data.abused_tlds:
            once("url.abused_tld", f"link to a .{suffix} domain {url.registrable_domain}", host=url.host)
        if url.port and url.port not in (80, 443):
            once("url.nonstandard_port", f"link to port {url.port} on {url.host}", url=url.url)
    if hosted and _credential_context(message, context):
        signals.append(context.signal("url.cloud_hosted_login",
                                      f"credential request linking to a page on cloud hosting ({hosted[0]})",
                                      hosts=hosted[:5]))
    return signals


def analyze(message: Message, context: Context) -> list[Signal]:
    urls = list(message.urls)
    if not urls:
        return []
    return _deceptive_anchors(urls, context) + _per_url(urls, message, context)
