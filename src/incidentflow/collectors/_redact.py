"""Redaction: secrets in collected output are replaced before anything is stored.

Each rule finds one kind of secret and replaces only the secret itself with
``[REDACTED:<kind>]``, keeping the words around it (the key, the user and host
of a URL, the authentication scheme) so the evidence still reads. The rules run
from the most recognisable shapes (private key blocks, JWTs, vendor tokens) to
the most general (key=value pairs, high-entropy strings after "secret" words),
and :func:`redact` repeats them until nothing changes, so redacting twice gives
what redacting once gives.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Callable

from ..exceptions import ValidationError

#: Redaction never loops more than this many times over a text.
_MAX_PASSES = 5

_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z_]+\]")


def _mark(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _is_placeholder(value: str) -> bool:
    return value.startswith("[REDACTED:")


# -- rules ------------------------------------------------------------------------
#
# A rule is (pattern, replace): ``replace(match)`` returns the replacement text, or
# None to leave the match as it is. Each rule must never match its own output.

_Replace = Callable[["re.Match[str]"], str | None]


def _whole(kind: str) -> _Replace:
    return lambda _match: _mark(kind)


def _group(name: str, kind: str) -> _Replace:
    """Replace only the named group, keeping the rest of the match."""

    def replace(match: re.Match[str]) -> str | None:
        value = match[name]
        if not value or _is_placeholder(value):
            return None
        whole, start = match[0], match.start()
        return whole[: match.start(name) - start] + _mark(kind) + whole[match.end(name) - start :]

    return replace


_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----"
    # Up to the matching END line; a block cut short (by the output cap) runs to the end.
    r"(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|[\s\S]*\Z)"
)
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*")
_GITHUB = re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})")
_SLACK = re.compile(r"(?:xox[abposr]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})")
_SLACK_WEBHOOK = re.compile(
    r"(?P<keep>hooks\.slack\.com/(?:services|workflows|triggers)/)(?P<secret>[A-Za-z0-9/_-]+)"
)
_AWS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")
_STRIPE = re.compile(
    r"(?<![A-Za-z0-9])(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})"
)
# npm, PyPI and SendGrid API tokens: fixed prefixes, so found wherever they stand.
_PACKAGE_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_-])(?:npm_[A-Za-z0-9]{36}|pypi-AgE[A-Za-z0-9_-]{50,}"
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])"
)
# An Azure shared access signature's signature in a URL: ...&sig=<base64>.
_SAS_SIGNATURE = re.compile(r"(?P<key>[?&]sig=)(?P<secret>[A-Za-z0-9%+/=_-]{16,})")
_GOOGLE_API_KEY = re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")
_GITLAB = re.compile(r"(?<![A-Za-z0-9])gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_-]{20,}")
_AZURE_KEY = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?P<key>(?:AccountKey|SharedAccessKey|SharedAccessSignature)=)"
    r"(?P<secret>[^;\s\"']+)"
)
# A secret that may be quoted: inside the quote ``q`` opened (the shell's, or shlex.join's
# around a whole argument) it runs to the matching quote, spaces and all; else to a blank.
_QUOTED_SECRET = r"(?P<secret>(?(q)(?:(?!(?P=q))[^\n])+|(?:'[^'\n]*'|\"[^\"\n]*\"|[^\s\"']+)))"
# curl -u user:password, --user user:password (and -uuser:password), quoted or not.
_USER_PASSWORD_FLAG = re.compile(
    r"(?<!\S)(?P<key>(?:-u[ \t]*|--user[ \t=]+)(?P<q>[\"'])?[^\s:\"']+:)" + _QUOTED_SECRET
)
# mysql -pPASSWORD (the password attached to -p), on a MySQL client's command line; the
# argument may be quoted whole ('-pS3cr3t!', as shlex.join writes it) or the password alone.
_MYSQL_PASSWORD = re.compile(
    r"(?P<key>\b(?:mysql|mariadb|mysqldump|mysqladmin)\b[^\n]*?[ \t](?P<q>[\"'])?-p)"
    + _QUOTED_SECRET
)
# The password flag of other clients: docker/podman login -p PW, redis-cli -a PW, sshpass -p PW.
_CLIENT_PASSWORD = re.compile(
    r"(?P<key>\b(?:(?:docker|podman|nerdctl)[ \t]+login\b[^\n]*?[ \t]-p|redis-cli\b[^\n]*?"
    r"[ \t]-a|sshpass\b[^\n]*?[ \t]-p)[ \t]*(?P<q>[\"'])?)" + _QUOTED_SECRET
)
# A .pgpass line: hostname:port:database:username:password.
_PGPASS = re.compile(r"(?m)^(?P<key>[^:\s]+:(?:\d{1,5}|\*):[^:\s]+:[^:\s]+:)(?P<secret>[^\s]+)$")
_URL_PASSWORD = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]{0,30}://)(?P<user>[^\s:/?#@\"'<>]*)"
    # To the last @ before the host: a password may hold an unencoded @.
    r":(?P<secret>[^\s/\"'<>]+)@"
)
_AUTHORIZATION = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])(?P<key>[\"']?(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?)"
    r"(?:(?P<scheme>bearer|basic|token|digest|negotiate|ntlm|apikey|aws4-hmac-sha256)[ \t]+)?"
    # Inside quotes the value ends at the quote; otherwise at the end of the line.
    r"(?P<value>(?<=[\"'])[^\r\n\"']+|(?<![\"'])[^\r\n]+)"
)
_COOKIE = re.compile(
    r"(?i)(?<![A-Za-z0-9_-])(?P<key>[\"']?(?:set-)?cookie[\"']?[ \t]*:[ \t]*[\"']?)"
    r"(?P<secret>[^\r\n\"']+)"
)
_TOKEN_CHARS = r"A-Za-z0-9\-._~+/"
_BEARER = re.compile(
    rf"(?i)(?<![A-Za-z0-9])(?P<key>bearer[ \t]+)"
    rf"(?P<secret>[{_TOKEN_CHARS}]+=*)(?![{_TOKEN_CHARS}=])"
)

# The last segment of a key that holds a secret: DB_PASSWORD, x-api-key, clientSecret.
_SECRET_WORD = (
    r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key)"
)
_SECRET_KEY = rf"(?:[A-Za-z0-9_.-]*{_SECRET_WORD}|(?:[A-Za-z0-9_.-]*[_.-])?pass)(?![A-Za-z0-9])"
# ``;`` ``,`` ``&`` end a value only before the next key of a connection or query string.
_PAIR_END = r"[;,&](?=[ \t]*[A-Za-z_][A-Za-z0-9_. -]{0,40}(?:=|:[ \t]))"
# A bare word, as after ``key=`` or ``--key``: to a blank, a quote or the next pair.
_WORD = rf"[^\s\"',;&<](?:(?!{_PAIR_END})[^\s\"'<])*"
# After ``key: `` or ``key = `` (INI, YAML) the value may hold blanks: to the end of the
# line, or to the next pair (``; user=bob``, `` user=bob``).
_LINE = rf"(?:(?!{_PAIR_END}|[ \t]+[A-Za-z_][A-Za-z0-9_.-]{{0,40}}=)[^\r\n])+(?<=\S)"
_QUOTED = r"\"(?:[^\"\\\r\n]|\\.)*\"?|'(?:[^'\\\r\n]|\\.)*'?"
# A quoted value (its closing quote may have been cut off) or a bare word; after a blank,
# the rest of the line.
_VALUE = rf"(?P<value>{_QUOTED}|(?![ \t]|\[REDACTED:)(?:(?<=[ \t]){_LINE}|{_WORD}))"
_KEY_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.-])(?P<key>[\"']?(?P<name>{_SECRET_KEY})[\"']?)"
    rf"(?P<sep>[ \t]*[:=][ \t]*){_VALUE}"
)
# A key=value that is one quoted shell argument ('PGPASSWORD=open sesame', as shlex.join
# writes it): the value runs to the closing quote, over shlex.join's '"'"' escapes.
_QUOTED_KEY_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.-])(?P<key>(?P<q>[\"'])(?P<name>{_SECRET_KEY}))"
    r"(?P<sep>[ \t]*[:=][ \t]*)"
    r"(?P<value>(?![ \t]|\[REDACTED:)(?:'\"'\"'|(?!(?P=q))[^\n])+)"
)
_FLAG_VALUE = re.compile(
    rf"(?i)(?<!\S)(?P<key>--?(?P<name>{_SECRET_KEY}))(?P<sep>[ \t]+)"
    rf"(?P<value>{_QUOTED}|(?!\[REDACTED:){_WORD})"
)
# A YAML block scalar (``password: |`` or ``>-``): the value is the indented lines below.
_BLOCK_SCALAR = re.compile(
    rf"(?im)^(?P<indent>[ \t]*)(?P<key>(?:-[ \t]+)*[\"']?(?P<name>{_SECRET_KEY})[\"']?"
    r"[ \t]*:[ \t]*[|>][+-]?[1-9]?[+-]?[ \t]*(?:#[^\n]*)?\n(?:[ \t]*\n)*)"
    r"(?P<value>(?P=indent)[ \t]+\S[^\n]*(?:\n(?:[ \t]*\n)*(?P=indent)[ \t]+\S[^\n]*)*)"
)
_BLOCK_INDICATOR = re.compile(r"[|>][+-]?[1-9]?[+-]?(?:[ \t]+#.*)?\Z")
_XML_VALUE = re.compile(rf"(?i)<(?P<name>{_SECRET_KEY})>(?P<value>[^<]+)</(?P=name)>")

# Values that are not secrets themselves: empty, masked, or a reference to one.
_NOT_A_SECRET = re.compile(
    r"(?i)(?:|\*+|x{3,}|null|none|nil|undefined|true|false|redacted|<[^>]*>"
    r"|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\{\{.*\}\}|%s)\Z"
)


_KIND_WORD = re.compile(
    r"passw(?:or)?d|passphrase|pwd|pass|private[_-]?key|secret|token|api[_-]?key|access[_-]?key"
)
_KIND_OF_WORD = {
    "pass": "password",
    "pwd": "password",
    "priv": "private_key",
    "secr": "secret",
    "toke": "token",
    "api": "api_key",
    "acce": "access_key",
}


def _key_kind(name: str) -> str:
    """The kind of secret a key holds, from its last secret word: ``db_password`` → password."""
    name = name.lower()
    if "secret" in name and "access" in name:
        return "aws_secret_access_key"
    words = _KIND_WORD.findall(name)
    if not words:
        return "secret"
    last = words[-1]
    return _KIND_OF_WORD.get(last[:4], _KIND_OF_WORD.get(last[:3], "secret"))


def _key_value(match: re.Match[str]) -> str | None:
    value = match["value"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    closed = bool(quote) and len(value) > 1 and value.endswith(quote)
    inner = value[len(quote) : len(value) - closed]
    if _is_placeholder(inner) or _NOT_A_SECRET.match(inner.strip()):
        return None
    if match["name"].lower() in _WORKING_DIRECTORY and inner.startswith(("/", "~")):
        return None  # PWD=/home/x is the shell's working directory, not a password
    if not quote and _BLOCK_INDICATOR.match(inner):
        return None  # "password: |": the secret is on the lines below (_BLOCK_SCALAR)
    kind = _key_kind(match["name"])
    return match["key"] + match["sep"] + quote + _mark(kind) + (quote if closed else "")


def _block_scalar(match: re.Match[str]) -> str | None:
    value = match["value"]
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    if all(_is_placeholder(line) for line in lines):
        return None
    margin = value[: len(value) - len(value.lstrip(" \t"))]
    return match["indent"] + match["key"] + margin + _mark(_key_kind(match["name"]))


def _xml_value(match: re.Match[str]) -> str | None:
    value = match["value"]
    if _is_placeholder(value) or _NOT_A_SECRET.match(value.strip()):
        return None
    name = match["name"]
    return f"<{name}>{_mark(_key_kind(name))}</{name}>"


_CREDENTIAL = re.compile(r"[^\s\"']+")
#: The shell's working-directory variables, which end in "pwd" but hold paths.
_WORKING_DIRECTORY = frozenset({"pwd", "oldpwd"})


def _authorization(match: re.Match[str]) -> str | None:
    value = match["value"]
    if _is_placeholder(value) or _NOT_A_SECRET.match(value.strip()):
        return None
    scheme = match["scheme"]
    rest = ""
    if scheme and scheme.lower() in ("bearer", "basic", "token", "apikey"):
        # One credential follows these schemes; the rest of the line is kept.
        credential = _CREDENTIAL.match(value)
        if credential is None:
            return None
        rest = value[credential.end() :]
        if _NOT_A_SECRET.match(credential[0]):
            return None
    head = match[0][: match.start("value") - match.start()]
    return head + _mark("authorization") + rest


def _bearer(match: re.Match[str]) -> str | None:
    token = match["secret"]
    # "the bearer of bad news" is prose: a token has a digit or is long.
    if not (len(token) >= 8 and (any(c.isdigit() for c in token) or len(token) >= 20)):
        return None
    return match["key"] + _mark("bearer")


_RULES: tuple[tuple[re.Pattern[str], _Replace], ...] = (
    (_PRIVATE_KEY, _whole("private_key")),
    (_JWT, _whole("jwt")),
    (_GITHUB, _whole("github_token")),
    (_SLACK, _whole("slack_token")),
    (_SLACK_WEBHOOK, _group("secret", "slack_webhook")),
    (_AWS_KEY_ID, _whole("aws_access_key_id")),
    (_STRIPE, _whole("stripe_key")),
    (_PACKAGE_TOKEN, _whole("api_token")),
    (_SAS_SIGNATURE, _group("secret", "azure_key")),
    (_GOOGLE_API_KEY, _whole("google_api_key")),
    (_GITLAB, _whole("gitlab_token")),
    (_AZURE_KEY, _group("secret", "azure_key")),
    (_USER_PASSWORD_FLAG, _group("secret", "password")),
    (_MYSQL_PASSWORD, _group("secret", "password")),
    (_CLIENT_PASSWORD, _group("secret", "password")),
    (_PGPASS, _group("secret", "password")),
    (_URL_PASSWORD, _group("secret", "url_password")),
    (_AUTHORIZATION, _authorization),
    (_COOKIE, _group("secret", "cookie")),
    (_BEARER, _bearer),
    (_XML_VALUE, _xml_value),
    (_BLOCK_SCALAR, _block_scalar),
    (_QUOTED_KEY_VALUE, _key_value),
    (_KEY_VALUE, _key_value),
    (_FLAG_VALUE, _key_value),
)

# -- high-entropy strings near a secret word ----------------------------------------

_TRIGGER = re.compile(
    r"(?i)secret|token|passw(?:or)?d|api[_ -]?key|credential|private[_ ]key|aws"
    r"|\[REDACTED:aws_access_key_id\]"
)
_CANDIDATE = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_CANDIDATE_START = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]")
#: How far after a secret word a high-entropy string is still taken for its value.
_WINDOW = 80


def _high_entropy(value: str) -> bool:
    """A random-looking string: letters and digits, and ≥ 3 bits of entropy a character."""
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.0


def _redact_high_entropy(text: str) -> tuple[str, int]:
    placeholders = [m.span() for m in _PLACEHOLDER.finditer(text)]
    starts = [a for a, _ in placeholders]
    spans: list[tuple[int, int, str]] = []
    for trigger in _TRIGGER.finditer(text):
        start = trigger.end()
        if not trigger[0].startswith("["):
            i = bisect.bisect_right(starts, trigger.start()) - 1
            if i >= 0 and placeholders[i][1] >= start:
                continue  # a word inside a placeholder ("[REDACTED:secret]") is no trigger
        limit = min(len(text), start + _WINDOW)
        newline = text.find("\n", start, limit)
        limit = limit if newline == -1 else newline
        # Candidates start in the window but are matched whole, however long.
        for begin in _CANDIDATE_START.finditer(text, start, limit):
            found = _CANDIDATE.match(text, begin.start())
            if found is None or (spans and found.start() < spans[-1][1]):
                continue
            # Forty characters right after an access key id are its secret key, however plain.
            aws_pair = trigger[0].startswith("[") and len(found[0]) == 40
            if aws_pair or _high_entropy(found[0]):
                aws = "aws" in trigger[0].lower() and len(found[0]) == 40
                spans.append((*found.span(), "aws_secret_access_key" if aws else "secret"))
    if not spans:
        return text, 0
    parts, last = [], 0
    for a, b, kind in spans:
        parts += [text[last:a], _mark(kind)]
        last = b
    parts.append(text[last:])
    return "".join(parts), len(spans)


def _substitute(pattern: re.Pattern[str], replace: _Replace, text: str) -> tuple[str, int]:
    """Like ``pattern.sub``, but a match left alone does not hide the matches inside it."""
    parts: list[str] = []
    count = done = pos = 0
    while (match := pattern.search(text, pos)) is not None:
        replaced = replace(match)
        if replaced is None:
            pos = match.start() + 1
            continue
        parts += [text[done : match.start()], replaced]
        count += 1
        done = pos = max(match.end(), match.start() + 1)
    if not count:
        return text, 0
    parts.append(text[done:])
    return "".join(parts), count


def _one_pass(text: str) -> tuple[str, int]:
    total = 0
    for pattern, replace in _RULES:
        text, count = _substitute(pattern, replace, text)
        total += count
    text, count = _redact_high_entropy(text)
    return text, total + count


def redact(text: str) -> tuple[str, int]:
    """Replace the secrets in ``text`` with ``[REDACTED:<kind>]`` markers.

    Collected output always goes through this function before it is stored;
    call it yourself on evidence you paste by hand. Only the secret is
    replaced: keys, user names, hosts and authentication schemes stay, so the
    evidence still says what it was.

    Recognised: PEM private key blocks; JWTs; GitHub (``ghp_``, ``gho_``,
    ``github_pat_`` ...) and Slack (``xoxb-`` ...) tokens and Slack webhook URLs;
    AWS access key ids (``AKIA...``); Stripe (``sk_live_``), Google (``AIza``)
    and GitLab (``glpat-``) keys; Azure ``AccountKey=``; ``curl -u user:password``,
    ``mysql -pPASSWORD`` and ``.pgpass`` lines; passwords in URLs
    (``scheme://user:password@host``); ``Authorization`` and ``Cookie`` header
    values; bearer tokens; ``password``/``passwd``/``pwd``/``secret``/``token``/
    ``api_key`` style values written as ``key=value``, ``key: value``,
    ``"key": "value"``, ``--key value`` or ``<key>value</key>`` (after ``key: `` or
    ``key = `` to the end of the line; a YAML ``key: |`` block whole; a quoted
    shell argument ``'KEY=a b'`` to its closing quote); and random-looking
    strings shortly after a word such as "secret", "token" or "aws".

    Redaction is a safety net, not a guarantee: a secret in a shape none of the
    rules knows passes through.

    Args:
        text: Any text: command output, a log excerpt, a pasted note.

    Returns:
        The redacted text and how many secrets were replaced. Redacting the
        result again changes nothing.

    Raises:
        ValidationError: ``text`` is not a string.

    Example:
        >>> redact("connecting to postgres://app:hunter2@db:5432/shop")
        ('connecting to postgres://app:[REDACTED:url_password]@db:5432/shop', 1)
        >>> redact('{"user": "bob", "password": "s3cr3t!"}')
        ('{"user": "bob", "password": "[REDACTED:password]"}', 1)

    """
    if not isinstance(text, str):
        raise ValidationError("text", f"expected text (str), got {type(text).__name__}")
    total = 0
    for _ in range(_MAX_PASSES):
        text, count = _one_pass(text)
        if not count:
            break
        total += count
    return text, total
