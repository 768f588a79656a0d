"""redact: planted secrets of every kind are replaced, ordinary text is left alone."""

from __future__ import annotations

import os
import shlex
import string
import sys
import time

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from incidentflow.collectors import CollectedEvidence, Command, redact
from incidentflow.exceptions import ValidationError

GITHUB_TOKEN = "ghp_" + "Zx9" * 12
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFsaWNlIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA7V9x0Q2LsVxbvNBBcX1xvW6tDm6Dcs0h\n"
    "q1Yq0mFLsdQPcp8XwRbj3zDg5w==\n"
    "-----END RSA PRIVATE KEY-----"
)

# (text with a planted secret, the secret, what the text must become)
CASES = [
    pytest.param(
        "curl -u admin:hunter2 https://api",
        "hunter2",
        "curl -u admin:[REDACTED:password] https://api",
        id="curl-user",
    ),
    pytest.param(
        "curl --user 'ops:s3cr3t!' https://api",
        "s3cr3t!",
        "curl --user 'ops:[REDACTED:password]' https://api",
        id="curl-user-long",
    ),
    pytest.param(
        "mysql -h db -uroot -pS3cretPW shop",
        "S3cretPW",
        "mysql -h db -uroot -p[REDACTED:password] shop",
        id="mysql-p",
    ),
    pytest.param(
        "mysql -uroot '-pS3cr3t!' -e 'select 1'",
        "S3cr3t!",
        "mysql -uroot '-p[REDACTED:password]' -e 'select 1'",
        id="mysql-p-quoted-whole",  # as shlex.join writes a password with a ! or a space
    ),
    pytest.param(
        "mysql -u root -p'S3cr3t pw' shop < dump.sql",
        "S3cr3t pw",
        "mysql -u root -p[REDACTED:password] shop < dump.sql",
        id="mysql-p-quoted-password",
    ),
    pytest.param(
        "curl -u 'admin:hunter 2' https://api",
        "hunter 2",
        "curl -u 'admin:[REDACTED:password]' https://api",
        id="curl-user-quoted-with-space",
    ),
    pytest.param(
        "docker login -u bob -p S3cretPass registry.example",
        "S3cretPass",
        "docker login -u bob -p [REDACTED:password] registry.example",
        id="docker-login-p",
    ),
    pytest.param(
        "redis-cli -h cache -a hunter22 ping",
        "hunter22",
        "redis-cli -h cache -a [REDACTED:password] ping",
        id="redis-cli-a",
    ),
    pytest.param(
        "sshpass -p 'pw 1' ssh deploy@host",
        "pw 1",
        "sshpass -p '[REDACTED:password]' ssh deploy@host",
        id="sshpass-p",
    ),
    pytest.param(
        "webhook secret whsec_" + "a1B2" * 8,
        "whsec_" + "a1B2" * 8,
        "webhook secret [REDACTED:stripe_key]",
        id="stripe-webhook-secret",
    ),
    pytest.param(
        "//registry.npmjs.org/:_authToken=npm_" + "A1b2C3d4E5" * 3 + "F6g7H8",
        "npm_" + "A1b2C3d4E5" * 3 + "F6g7H8",
        "//registry.npmjs.org/:_authToken=[REDACTED:api_token]",
        id="npm-token",
    ),
    pytest.param(
        "SENDGRID_KEY SG." + "a" * 22 + "." + "b" * 43,
        "SG." + "a" * 22 + "." + "b" * 43,
        "SENDGRID_KEY [REDACTED:api_token]",
        id="sendgrid-key",
    ),
    pytest.param(
        "GET /c?sv=2020-08-04&sig=AbCdEf%2B123456789xyz%3D&se=2026",
        "AbCdEf%2B123456789xyz%3D",
        "GET /c?sv=2020-08-04&sig=[REDACTED:azure_key]&se=2026",
        id="azure-sas-sig",
    ),
    pytest.param(
        "echo https://bob:p@ss@db.internal/",
        "p@ss",
        "echo https://bob:[REDACTED:url_password]@db.internal/",
        id="url-password-with-at",
    ),
    pytest.param(
        "charge failed with key sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "charge failed with key [REDACTED:stripe_key]",
        id="stripe",
    ),
    pytest.param(
        "maps?key=AIzaSyA-1234567890abcdefghijklmnopqrstu&q=x",
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        "maps?key=[REDACTED:google_api_key]&q=x",
        id="google-api-key",
    ),
    pytest.param(
        "PRIVATE-TOKEN: glpat-Ab3dEf6hIj9kLm2nOp5q",
        "glpat-Ab3dEf6hIj9kLm2nOp5q",
        "PRIVATE-TOKEN: [REDACTED:gitlab_token]",
        id="gitlab",
    ),
    pytest.param(
        "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=q1w2e3r4t5y6==;"
        "EndpointSuffix=core.windows.net",
        "q1w2e3r4t5y6==",
        "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=[REDACTED:azure_key];"
        "EndpointSuffix=core.windows.net",
        id="azure-account-key",
    ),
    pytest.param(
        "db.example.com:5432:shop:app:hunter2\n*:*:*:postgres:Sup3r",
        "hunter2",
        "db.example.com:5432:shop:app:[REDACTED:password]\n*:*:*:postgres:[REDACTED:password]",
        id="pgpass",
    ),
    pytest.param(
        "curl -H 'Authorization: Bearer abc123DEF456ghi789' https://api",
        "abc123DEF456ghi789",
        "curl -H 'Authorization: Bearer [REDACTED:authorization]' https://api",
        id="authorization-bearer",
    ),
    pytest.param(
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "dXNlcjpwYXNzd29yZA==",
        "Authorization: Basic [REDACTED:authorization]",
        id="authorization-basic",
    ),
    pytest.param(
        'Authorization: Digest username="bob", response="6629fae49393a053"',
        "6629fae49393a053",
        "Authorization: Digest [REDACTED:authorization]",
        id="authorization-digest",
    ),
    pytest.param(
        '{"headers": {"Authorization": "token f00ba7f00ba7"}}',
        "f00ba7f00ba7",
        '{"headers": {"Authorization": "token [REDACTED:authorization]"}}',
        id="authorization-json",
    ),
    pytest.param(
        "sending request with bearer 9f8e7d6c5b4a3f2e1d0c",
        "9f8e7d6c5b4a3f2e1d0c",
        "sending request with bearer [REDACTED:bearer]",
        id="bearer",
    ),
    pytest.param(
        "Set-Cookie: session=a8f7d6e5c4b3; HttpOnly",
        "a8f7d6e5c4b3",
        "Set-Cookie: [REDACTED:cookie]",
        id="cookie",
    ),
    pytest.param(
        "login ok password=hunter2 user=bob",
        "hunter2",
        "login ok password=[REDACTED:password] user=bob",
        id="password-equals",
    ),
    pytest.param(
        "DB_PASSWD: 'c0rrect horse'",
        "c0rrect horse",
        "DB_PASSWD: '[REDACTED:password]'",
        id="passwd-yaml-quoted",
    ),
    pytest.param(
        "mysql pwd=Tr0ub4dor&x=1",
        "Tr0ub4dor",
        "mysql pwd=[REDACTED:password]&x=1",
        id="pwd",
    ),
    pytest.param(
        '{"user": "bob", "client_secret": "s3cr3t-value", "n": 1}',
        "s3cr3t-value",
        '{"user": "bob", "client_secret": "[REDACTED:secret]", "n": 1}',
        id="secret-json",
    ),
    pytest.param(
        "GITLAB_TOKEN=glpat-abcdef123456",
        "glpat-abcdef123456",
        "GITLAB_TOKEN=[REDACTED:token]",
        id="token-env",
    ),
    pytest.param(
        "x-api-key: 12345-abcde-67890",
        "12345-abcde-67890",
        "x-api-key: [REDACTED:api_key]",
        id="api-key-header",
    ),
    pytest.param(
        "config = {'api_key': 'AIzaSyA-1234567890abcdefg'}",
        "AIzaSyA-1234567890abcdefg",
        "config = {'api_key': '[REDACTED:api_key]'}",
        id="api-key-python-dict",
    ),
    pytest.param(
        "https://example.com/cb?access_token=ya29.a0Af&state=1",
        "ya29.a0Af",
        "https://example.com/cb?access_token=[REDACTED:token]&state=1",
        id="token-query-string",
    ),
    pytest.param(
        "mysqldump --password s3cr3tpw --user root",
        "s3cr3tpw",
        "mysqldump --password [REDACTED:password] --user root",
        id="password-flag",
    ),
    pytest.param(
        "<config><password>hunter2</password></config>",
        "hunter2",
        "<config><password>[REDACTED:password]</password></config>",
        id="password-xml",
    ),
    pytest.param(
        "Server=db;User Id=sa;Password=P@ssw0rd!;Encrypt=true",
        "P@ssw0rd!",
        "Server=db;User Id=sa;Password=[REDACTED:password];Encrypt=true",
        id="connection-string-ado",
    ),
    pytest.param(
        "DATABASE_URL=postgresql://app:pa55word@db.internal:5432/shop",
        "pa55word",
        "DATABASE_URL=postgresql://app:[REDACTED:url_password]@db.internal:5432/shop",
        id="url-password",
    ),
    pytest.param(
        "connected to redis://:r3dis-pass@cache:6379/0 and amqp://guest:guest@mq//",
        "r3dis-pass",
        "connected to redis://:[REDACTED:url_password]@cache:6379/0 and "
        "amqp://guest:[REDACTED:url_password]@mq//",
        id="url-password-several",
    ),
    pytest.param(
        "key id AKIAIOSFODNN7EXAMPLE in use",
        "AKIAIOSFODNN7EXAMPLE",
        "key id [REDACTED:aws_access_key_id] in use",
        id="aws-access-key-id",
    ),
    pytest.param(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = [REDACTED:aws_secret_access_key]",
        id="aws-secret-key-config",
    ),
    pytest.param(
        "AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "[REDACTED:aws_access_key_id],[REDACTED:aws_secret_access_key]",
        id="aws-credentials-csv",
    ),
    pytest.param(
        f"export GH={GITHUB_TOKEN}",
        GITHUB_TOKEN,
        "export GH=[REDACTED:github_token]",
        id="github-classic",
    ),
    pytest.param(
        "gho_16C7e42F292c6912E7710c838347Ae178B4a used",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "[REDACTED:github_token] used",
        id="github-oauth",
    ),
    pytest.param(
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "[REDACTED:github_token]",
        id="github-fine-grained",
    ),
    pytest.param(
        "slack: xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "slack: [REDACTED:slack_token]",
        id="slack-bot",
    ),
    pytest.param(
        "xoxp-1234-5678-abcdefabcdef",
        "xoxp-1234-5678-abcdefabcdef",
        "[REDACTED:slack_token]",
        id="slack-user",
    ),
    pytest.param(
        "posting to https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX",
        "T0000/B0000/XXXXXXXXXXXXXXXX",
        "posting to https://hooks.slack.com/services/[REDACTED:slack_webhook]",
        id="slack-webhook",
    ),
    pytest.param(f"id_token {JWT} ok", JWT, "id_token [REDACTED:jwt] ok", id="jwt"),
    pytest.param(
        f"before\n{PEM}\nafter",
        "MIIEowIBAAKCAQEA7V9x0Q2LsVxbvNBBcX1xvW6tDm6Dcs0h",
        "before\n[REDACTED:private_key]\nafter",
        id="pem-rsa",
    ),
    pytest.param(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n"
        "-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU",
        "[REDACTED:private_key]",
        id="pem-openssh",
    ),
    pytest.param(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n[output cut: ...]",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        "[REDACTED:private_key]",
        id="pem-cut-short",
    ),
    pytest.param(
        "the new secret is Qm9iJ3MgcmVhbGx5IHNlY3JldCAx and it works",
        "Qm9iJ3MgcmVhbGx5IHNlY3JldCAx",
        "the new secret is [REDACTED:secret] and it works",
        id="high-entropy-after-secret",
    ),
    pytest.param(
        "Using token from vault (value 8d9f7a6b5c4e3d2f1a0b9c8d7e6f5a4b)",
        "8d9f7a6b5c4e3d2f1a0b9c8d7e6f5a4b",
        "Using token from vault (value [REDACTED:secret])",
        id="high-entropy-after-token",
    ),
]


class TestPlantedSecrets:
    """Each kind of secret is replaced by a marker naming its kind; the context stays."""

    @pytest.mark.parametrize(("text", "secret", "expected"), CASES)
    def test_replaced(self, text: str, secret: str, expected: str) -> None:
        """The secret is gone, the marker is in its place, and the rest is unchanged."""
        redacted, count = redact(text)
        assert secret not in redacted
        assert redacted == expected
        assert count == expected.count("[REDACTED:")

    @pytest.mark.parametrize(("text", "secret", "expected"), CASES)
    def test_redacting_again_changes_nothing(self, text: str, secret: str, expected: str) -> None:
        """A redacted text is a fixed point: no change, no count."""
        assert redact(expected) == (expected, 0)

    def test_a_log_with_many_secrets(self) -> None:
        """Secrets on many lines of one log are each replaced as they would be alone."""
        whole = [case for case in CASES if case.id != "pem-cut-short"]  # it runs to the end
        log = "\n".join(str(case.values[0]) for case in whole)
        expected = "\n".join(str(case.values[2]) for case in whole)
        assert redact(log) == (expected, expected.count("[REDACTED:"))


ORDINARY = [
    "PWD=/home/alice/src/shop",
    "OLDPWD=/tmp",
    "docker run -p8080:80 shop:latest",
    "ssh -p2222 deploy@web1",
    "14:05:32 worker 3 done",
    "a1b2c3d 2026-11-27T13:00:00+00:00 Alice Example: Fix tokenizer crash (HEAD -> main)",
    "Author: Alice Example <alice@example.com>",
    "Nov 27 14:00:01 web sshd[812]: Failed password for invalid user bob from 10.0.0.7",
    "Nov 27 14:00:02 web sshd[812]: Accepted publickey for deploy from 10.0.0.8 port 52144",
    "● nginx.service - A high performance web server",
    "   Main PID: 1234 (nginx)",
    "CONTAINER ID   IMAGE          COMMAND   CREATED   STATUS    PORTS   NAMES",
    "GET /checkout?id=42&max_tokens=100 HTTP/1.1 500",
    "token refresh failed; tokens: 5 remaining",
    "password: ${DB_PASSWORD}",
    'api_key: "****"',
    "secret: null",
    "password=",
    "the bearer of bad news",
    "https://example.com:8443/users/@alice",
    "ssh://git@github.com/org/repo.git",
    "see https://docs.example.com/auth/tokens for details",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
]


class TestOrdinaryText:
    """Text without secrets comes back unchanged, with a count of 0."""

    @pytest.mark.parametrize("text", ORDINARY)
    def test_unchanged(self, text: str) -> None:
        """Log lines, commit subjects and masked or referenced values are left alone."""
        assert redact(text) == (text, 0)

    def test_empty(self) -> None:
        """The empty text stays empty."""
        assert redact("") == ("", 0)

    @pytest.mark.parametrize("value", [None, b"password=x", 42])
    def test_not_text(self, value: object) -> None:
        """Anything but a str is refused."""
        with pytest.raises(ValidationError) as caught:
            redact(value)  # type: ignore[arg-type]
        assert caught.value.field == "text"


class TestSpeed:
    """Redaction stays fast on large and adversarial inputs."""

    @pytest.mark.parametrize(
        "text",
        [
            "\n".join(
                f"2026-11-27T14:00:{i % 60:02d}Z api: GET /checkout?id={i} status=500 "
                f"token=abc{i}def secret Zq{i}xW8vK3mN7pR2sT5uY9b"
                for i in range(5_000)
            ),
            "eyJ" * 100_000,
            "password=x " * 10_000,
            "a://b:c" * 50_000,
            "token " * 50_000,
            "-----BEGIN RSA PRIVATE KEY-----" * 10_000,
            "x" * 300_000,
        ],
        ids=["log", "eyJ", "pairs", "urls", "triggers", "pem-begins", "one-run"],
    )
    def test_large_inputs(self, text: str) -> None:
        """A few hundred kilobytes never send a pattern into catastrophic backtracking.

        Redacting takes well under a second (benchmarks); the bound only catches a
        pattern that backtracks without end, which would take hours, not a slow machine.
        """
        started = time.perf_counter()
        redact(text)
        assert time.perf_counter() - started < 60


# -- properties ------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"

# Pieces that make redaction rules fire, half-fire or interact.
FRAGMENTS = st.sampled_from(
    [
        "password",
        "passwd",
        "token",
        "secret",
        "api_key",
        "Authorization",
        "Bearer ",
        "Basic ",
        "cookie",
        "aws",
        "=",
        ":",
        ": ",
        " ",
        "\n",
        '"',
        "'",
        "&",
        ";",
        ",",
        "@",
        "://",
        "postgres://u:",
        "--",
        "eyJ",
        "eyJhbGciOiJIUzI1NiJ9.",
        "ghp_",
        "github_pat_",
        "xoxb-",
        "AKIA",
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END RSA PRIVATE KEY-----",
        "<password>",
        "</password>",
        "[REDACTED:token]",
        "[REDACTED:",
        "]",
        "***",
        "${X}",
        "\\",
        "hooks.slack.com/services/",
    ]
)
NOISE = st.lists(
    st.one_of(FRAGMENTS, st.text(max_size=12), st.text(ALNUM, min_size=8, max_size=44)),
    max_size=24,
).map("".join)


def _with_letter_and_digit(value: str) -> str:
    return value + "7q"


VALUE = st.text(ALNUM, min_size=10, max_size=40).map(_with_letter_and_digit)
RANDOM_40 = st.lists(st.sampled_from(ALNUM), min_size=40, max_size=40).map("".join)


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A text holding one secret of a random kind, and the parts that must disappear."""
    kind = draw(
        st.sampled_from(
            [
                "github",
                "github_pat",
                "slack",
                "aws_id",
                "jwt",
                "password",
                "json",
                "env",
                "authorization",
                "bearer",
                "url",
                "pem",
                "high_entropy",
                "aws_secret",
            ]
        )
    )
    value = draw(VALUE)
    if kind == "github":
        secret = "ghp_" + draw(st.text(ALNUM, min_size=36, max_size=40))
        return secret, [secret]
    if kind == "github_pat":
        secret = "github_pat_" + draw(st.text(ALNUM + "_", min_size=22, max_size=82))
        return secret, [secret]
    if kind == "slack":
        prefix = draw(st.sampled_from(["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"]))
        secret = prefix + draw(st.text(ALNUM + "-", min_size=10, max_size=50))
        return secret, [secret]
    if kind == "aws_id":
        secret = "AKIA" + draw(
            st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16)
        )
        return secret, [secret]
    if kind == "jwt":
        parts = [draw(st.text(B64URL, min_size=10, max_size=60)) for _ in range(3)]
        secret = "eyJ" + ".".join(parts)
        return secret, [secret, *(p for p in parts[1:] if len(p) >= 10)]
    if kind == "password":
        key = draw(st.sampled_from(["password", "passwd", "pwd", "DB_PASSWORD", "secret"]))
        sep = draw(st.sampled_from(["=", ": ", " = ", ":"]))
        return f"{key}{sep}{value}", [value]
    if kind == "json":
        key = draw(st.sampled_from(["password", "token", "api_key", "client_secret"]))
        return f'{{"{key}": "{value}"}}', [value]
    if kind == "env":
        key = draw(st.sampled_from(["GITHUB_TOKEN", "STRIPE_API_KEY", "PGPASSWORD"]))
        return f"{key}={value}", [value]
    if kind == "authorization":
        scheme = draw(st.sampled_from(["Bearer ", "Basic ", "token ", ""]))
        return f"Authorization: {scheme}{value}", [value]
    if kind == "bearer":
        token = draw(st.text(ALNUM + "-._~+/", min_size=20, max_size=60))
        assume(token[0] not in "-._~+/")
        return f"Bearer {token}", [token]
    if kind == "url":
        scheme = draw(st.sampled_from(["postgresql", "mysql", "redis", "https", "amqp"]))
        return f"{scheme}://app:{value}@db.internal:5432/shop", [value]
    if kind == "pem":
        body = draw(
            st.lists(st.text(ALNUM + "+/", min_size=16, max_size=64), min_size=1, max_size=4)
        )
        block = "\n".join(body)
        return f"-----BEGIN EC PRIVATE KEY-----\n{block}\n-----END EC PRIVATE KEY-----", body
    if kind == "high_entropy":
        word = draw(st.sampled_from(["secret", "token", "api key", "password"]))
        secret = draw(st.lists(st.sampled_from(ALNUM), min_size=20, max_size=40, unique=True))
        value = "".join(secret) + "7q"
        return f"the {word} is {value}", [value]
    # aws_secret
    secret = draw(RANDOM_40)
    assume(sum(c.isdigit() for c in secret) and sum(c.isalpha() for c in secret))
    assume(len(set(secret)) >= 12)
    return f"AKIAIOSFODNN7EXAMPLE {secret}", [secret]


class TestProperties:
    """Redaction is idempotent, and a planted secret never survives whatever surrounds it."""

    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(NOISE)
    @example("password=abc password=[REDACTED:password]")
    @example("postgres://u:ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@h")
    @example("AKIAIOSFODNN7EXAMPLE [REDACTED:aws_access_key_id] abcdefghij1234567890")
    def test_redacting_twice_equals_redacting_once(self, text: str) -> None:
        """redact(redact(t)) gives redact(t) and finds nothing more."""
        once, _ = redact(text)
        assert redact(once) == (once, 0)

    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(planted(), NOISE, NOISE, st.sampled_from([" ", "\n", " \n "]))
    def test_a_planted_secret_never_survives(
        self, secret: tuple[str, list[str]], before: str, after: str, gap: str
    ) -> None:
        """Whatever random text surrounds it, the secret is replaced."""
        text, parts = secret
        for part in parts:
            assume(part not in before and part not in after)
        redacted, count = redact(before + gap + text + gap + after)
        for part in parts:
            assert part not in redacted
        assert count >= 1


class TestCommandLines:
    """The collector shows a command as shlex.join writes it: quoting never hides a password."""

    @given(
        st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="'\""),
            min_size=6,
            max_size=24,
        ).filter(lambda pw: "[" not in pw and any(c.isalnum() for c in pw)),
        st.sampled_from(["", " ", "!", "$", "#", " x"]),
    )
    def test_a_password_on_a_quoted_command_line_never_survives(
        self, password: str, tail: str
    ) -> None:
        secret = password + tail
        for argv in (
            ["mysql", "-uroot", f"-p{secret}", "shop"],
            ["curl", "-u", f"admin:{secret}", "https://api"],
        ):
            line = shlex.join(argv)
            redacted, count = redact(line)
            assert count == 1, line
            assert secret not in redacted, line


# (text with a planted secret, the secret, what the text must become): values that hold
# blanks or ; , & or sit on the lines below their key, all of which must go.
RUN_ON = [
    pytest.param(
        "password = correct horse battery staple",
        "horse battery staple",
        "password = [REDACTED:password]",
        id="ini-value-with-blanks",
    ),
    pytest.param(
        "db:\n  password: correct horse battery staple\n  user: bob",
        "horse battery staple",
        "db:\n  password: [REDACTED:password]\n  user: bob",
        id="yaml-plain-scalar-with-blanks",
    ),
    pytest.param(
        "DB_PASSWORD=abc;def123", "def123", "DB_PASSWORD=[REDACTED:password]", id="semicolon"
    ),
    pytest.param("DB_PASSWORD=abc,def123", "def123", "DB_PASSWORD=[REDACTED:password]", id="comma"),
    pytest.param("password=hun&ter2", "ter2", "password=[REDACTED:password]", id="ampersand"),
    pytest.param(
        "password: |\n  hunter2xyz\n  second line\nuser: bob",
        "hunter2xyz",
        "password: |\n  [REDACTED:password]\nuser: bob",
        id="yaml-literal-block",
    ),
    pytest.param(
        "db:\n  - password: >-\n      hunter2xyz\n\n      more\n  - user: bob",
        "more",
        "db:\n  - password: >-\n      [REDACTED:password]\n  - user: bob",
        id="yaml-folded-block-in-a-list",
    ),
    pytest.param(
        "env 'PGPASSWORD=open sesame now' psql",
        "sesame now",
        "env 'PGPASSWORD=[REDACTED:password]' psql",
        id="shlex-quoted-key-value",
    ),
    pytest.param(
        "psql '--password=hunter 2' -h db",
        "hunter 2",
        "psql '--password=[REDACTED:password]' -h db",
        id="shlex-quoted-flag",
    ),
    pytest.param(
        "env 'PGPASSWORD=it'\"'\"'s open' psql",
        "s open",
        "env 'PGPASSWORD=[REDACTED:password]' psql",
        id="shlex-quoted-with-escaped-quote",
    ),
    pytest.param(
        "Server=db; Password = a b c; Encrypt=true",
        "a b c",
        "Server=db; Password = [REDACTED:password]; Encrypt=true",
        id="connection-string-with-blanks",
    ),
    pytest.param(
        "login failed password: hunter 2 user=bob",
        "hunter 2",
        "login failed password: [REDACTED:password] user=bob",
        id="line-value-ends-at-next-pair",
    ),
]

#: Texts near the new shapes that must stay as they are.
RUN_ON_ORDINARY = [
    "password: |",
    "PWD=/home/alice/my projects/shop",
    "'PWD=/home/x y'",
    "password: ${DB_PASSWORD}",
    "GET /cb?access_token=[REDACTED:token]&state=1",
]


class TestValuesThatRunOn:
    """A value is masked whole: past blanks, ; , & and onto the lines of a YAML block."""

    @pytest.mark.parametrize(("text", "secret", "expected"), RUN_ON)
    def test_replaced(self, text: str, secret: str, expected: str) -> None:
        """No part of the value survives, and the text around it is unchanged."""
        redacted, count = redact(text)
        assert secret not in redacted
        assert (redacted, count) == (expected, 1)
        assert redact(redacted) == (redacted, 0)

    def test_unchanged(self) -> None:
        """Block indicators, working directories and references are not secrets."""
        assert [redact(text) for text in RUN_ON_ORDINARY] == [(t, 0) for t in RUN_ON_ORDINARY]

    @given(
        st.lists(
            st.text(alphabet=string.ascii_letters + string.digits + "!$#%", min_size=3, max_size=9),
            min_size=2,
            max_size=5,
        )
    )
    def test_a_quoted_command_line_never_keeps_a_word(self, words: list[str]) -> None:
        """`env 'PGPASSWORD=w1 w2 ...'`, as shlex.join writes it, keeps none of the words."""
        secret = " ".join(words)
        for argv in (["env", f"PGPASSWORD={secret}", "psql"], ["psql", f"--password={secret}"]):
            redacted, count = redact(shlex.join(argv))
            assert count == 1
            assert all(word not in redacted for word in words), redacted


class TestSecretsAtTheOutputCap:
    """A secret the output cap cuts through is still masked, not stored in part."""

    @staticmethod
    def printing(text: str, cap: int) -> CollectedEvidence:
        """Collect a command that prints ``text`` (passed in its environment, not its argv)."""
        code = "import os; print(os.environ['TEXT'])"
        env = {"TEXT": text, "PATH": os.environ.get("PATH", "")}
        return Command([sys.executable, "-c", code]).collect(max_bytes=cap, env=env)

    @pytest.mark.parametrize("cap", [24, 30, 36, 41])
    def test_a_token_cut_by_the_cap(self, cap: int) -> None:
        """No run of the token's characters is kept, wherever the cap falls."""
        token = "ghp_" + "Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc8"
        evidence = self.printing("pushing with " + token + " and more" * 5, cap)
        assert evidence.truncated
        assert not any(token[i : i + 6] in evidence.content for i in range(len(token) - 5))
        assert evidence.redactions == evidence.content.count("[REDACTED:")
